"""The report's charts as SVG, drawn server-side with matplotlib (Agg, no pyplot state).

Every label comes from the manager page's messages (``api/web/messages/<lang>/manager.json``),
so a chart speaks the page's language. Text is drawn as paths: the SVG needs no font.
"""

from __future__ import annotations

import io
import itertools
import math
from typing import TYPE_CHECKING

import matplotlib as mpl

mpl.use("Agg")

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from api.reports.service import DELAY_EDGES_MIN, R2C_EDGES_H, histogram
from api.web.i18n import Language, translate
from routing import reports

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from api.reports.service import ChartName, RangeReport


INK, MUTED, OK, BAD, INFO, WARN = "#1d2733", "#5f6b7a", "#1e8e3e", "#c5221f", "#1a73e8", "#e37400"
#: Arrivals later than this (minutes) are drawn as late, as :data:`routing.reports.LATE_ARRIVAL_MIN`.
LATE_MIN = reports.LATE_ARRIVAL_MIN


def _fmt(x: float) -> str:
    return f"{x:g}"


def bin_labels(edges: tuple[float, ...]) -> list[str]:
    """Return one label per bin: ``<a`` and ``≥b`` for the open ends, ``a–b`` otherwise."""
    out = []
    for lo, hi in itertools.pairwise(edges):
        if math.isinf(lo):
            out.append(f"<{_fmt(hi)}")
        elif math.isinf(hi):
            out.append(f"≥{_fmt(lo)}")
        else:
            out.append(f"{_fmt(lo)}–{_fmt(hi)}")
    return out


def _figure(height_in: float = 3.4) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.4, height_in), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=9)
    return fig, ax


def _empty(ax: Axes, lang: Language) -> None:
    ax.text(
        0.5,
        0.5,
        translate(lang, "manager.no_data"),
        ha="center",
        va="center",
        color=MUTED,
        transform=ax.transAxes,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(
    ax: Axes, labels: list[str], counts: list[int], colors: list[str], lang: Language
) -> None:
    if sum(counts) == 0:
        _empty(ax, lang)
        return
    xs = range(len(counts))
    ax.bar(xs, counts, color=colors, width=0.8)
    ax.set_xticks(list(xs), labels, rotation=30, ha="right")
    ax.set_ylabel(translate(lang, "manager.chart_count"), color=INK)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for x, c in zip(xs, counts, strict=True):
        if c:
            ax.annotate(str(c), (x, c), ha="center", va="bottom", fontsize=8, color=INK)
    ax.margins(y=0.15)


def _slots(ax: Axes, n: int, least: int = 4) -> None:
    """Give horizontal bars room for at least ``least`` rows, so one bar is not a slab."""
    ax.set_ylim(n - max(n, least) - 0.4, n - 0.4)


def _legend_on_top(ax: Axes) -> None:
    ax.figure.legend(frameon=False, fontsize=8, loc="outside lower center", ncol=2)


def _r2c(rep: RangeReport, ax: Axes, lang: Language) -> None:
    hist = histogram(reports.request_to_completion_hours(rep.frame), R2C_EDGES_H)
    _bars(ax, bin_labels(R2C_EDGES_H), hist["counts"], [INFO] * len(hist["counts"]), lang)
    ax.set_title(translate(lang, "manager.chart_r2c"), color=INK, fontsize=11)
    ax.set_xlabel(translate(lang, "manager.chart_hours"), color=INK)


def _delay(rep: RangeReport, ax: Axes, lang: Language) -> None:
    delays = reports.arrival_delay_minutes(rep.frame)
    hist = histogram(delays, DELAY_EDGES_MIN)
    colors = [
        BAD if lo >= LATE_MIN else (WARN if hi > 0 and lo >= 0 else OK)
        for lo, hi in itertools.pairwise(DELAY_EDGES_MIN)
    ]
    _bars(ax, bin_labels(DELAY_EDGES_MIN), hist["counts"], colors, lang)
    ax.set_title(translate(lang, "manager.chart_delay"), color=INK, fontsize=11)
    ax.set_xlabel(translate(lang, "manager.chart_minutes"), color=INK)


def _group_label(value: object, by: str) -> str:
    if by == "day" and hasattr(value, "strftime"):
        return str(value.strftime("%d/%m"))
    return str(value)


def _on_time(rep: RangeReport, ax: Axes, lang: Language) -> None:
    table: pd.DataFrame = rep.tables["on_time"]
    ax.set_title(
        translate(lang, "manager.chart_on_time", group=translate(lang, f"manager.group_{rep.by}")),
        color=INK,
        fontsize=11,
    )
    if table.empty:
        _empty(ax, lang)
        return
    labels = [_group_label(k, rep.by) for k in table.index]
    rates = (table["on_time_rate"].astype(float) * 100).tolist()
    done = (table["completion_rate"].astype(float) * 100).tolist()
    if rep.by == "day" and len(labels) > 1:
        xs = list(range(len(labels)))
        ax.plot(
            xs,
            done,
            color=MUTED,
            marker="o",
            ms=3,
            label=translate(lang, "manager.completion_rate"),
        )
        ax.plot(
            xs, rates, color=OK, marker="o", ms=3, label=translate(lang, "manager.on_time_rate")
        )
        step = max(1, len(xs) // 12)
        ax.set_xticks(xs[::step], labels[::step], rotation=30, ha="right")
        ax.set_ylim(0, 105)
        ax.set_ylabel("%", color=INK)
        _legend_on_top(ax)
        return
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, done, color="#d8dee6", height=0.7, label=translate(lang, "manager.completion_rate"))
    ax.barh(ys, rates, color=OK, height=0.45, label=translate(lang, "manager.on_time_rate"))
    ax.set_yticks(ys, labels)
    _slots(ax, len(ys))
    ax.set_xlim(0, 110)
    ax.set_xlabel("%", color=INK)
    for y, r in zip(ys, rates, strict=True):
        if not math.isnan(r):
            ax.annotate(
                f"{r:.0f}%",
                (r, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
    _legend_on_top(ax)


def _failures(rep: RangeReport, ax: Axes, lang: Language) -> None:
    table = reports.failure_reasons(rep.frame)
    ax.set_title(translate(lang, "manager.chart_failures"), color=INK, fontsize=11)
    if table.empty:
        _empty(ax, lang)
        return
    labels = (table["ly_do"] if lang == "vi" else table["reason_en"]).astype(str).tolist()
    counts = table["count"].astype(int).tolist()
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, counts, color=BAD, height=0.6)
    ax.set_yticks(ys, labels)
    _slots(ax, len(ys))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(translate(lang, "manager.chart_count"), color=INK)
    for y, c in zip(ys, counts, strict=True):
        ax.annotate(
            str(c), (c, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
        )
    ax.margins(x=0.12)


def render_svg(rep: RangeReport, chart: ChartName, *, lang: Language = "vi") -> bytes:
    """Draw one of :data:`CHARTS` for a range report and return the SVG document."""
    groups = len(rep.tables["on_time"]) if chart == "on_time" and rep.by != "day" else 0
    fails = (
        reports.failure_reasons(rep.frame)["fail_reason"].nunique() if chart == "failures" else 0
    )
    rows = max(groups, fails)
    fig, ax = _figure(max(3.4, 1.2 + 0.28 * rows))
    {
        "request_to_completion": _r2c,
        "arrival_delay": _delay,
        "on_time": _on_time,
        "failures": _failures,
    }[chart](rep, ax, lang)
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()
