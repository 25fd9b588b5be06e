"""Draw a planned day with matplotlib: the road network, each round in its colour, stops and reasons."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from geodata.compact import CompactGraph
    from routing.planner import DayPlan


def draw_network(
    ax: Axes, graph: CompactGraph, *, bbox: tuple[float, float, float, float] | None = None
) -> None:
    """Draw the roads of a compact graph in grey (one segment per edge, thicker for main roads)."""
    from matplotlib.collections import LineCollection

    main = {"trunk", "primary", "secondary", "motorway"}
    segments = []
    widths = []
    keep = graph.twin < np.arange(graph.n_edges)  # draw each two-way road once
    keep |= graph.twin < 0
    for e in np.flatnonzero(keep).tolist():
        a, b = graph.geom_ptr[e], graph.geom_ptr[e + 1]
        xs, ys = graph.geom_lon[a:b], graph.geom_lat[a:b]
        if bbox is not None and (
            xs.max() < bbox[0] or xs.min() > bbox[2] or ys.max() < bbox[1] or ys.min() > bbox[3]
        ):
            continue
        segments.append(np.column_stack((xs, ys)))
        widths.append(1.0 if graph.classes[graph.road_class[e]] in main else 0.3)
    ax.add_collection(LineCollection(segments, colors="#b8b8b8", linewidths=widths, zorder=1))


def plot_day(
    day: DayPlan, path: Path | str, *, graph: CompactGraph | None = None, dpi: int = 130
) -> Path:
    """Save a map of the day's rounds as PNG and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 11))
    problem = day.problem
    lon = [d.lon for d in problem.depots] + [j.lon for j in problem.jobs]
    lat = [d.lat for d in problem.depots] + [j.lat for j in problem.jobs]
    pad = 0.02
    bbox = (min(lon) - pad, min(lat) - pad, max(lon) + pad, max(lat) + pad)
    if graph is not None:
        draw_network(ax, graph, bbox=bbox)
    cmap = plt.get_cmap("tab20")
    jobs = problem.job_by_id()
    for k, route in enumerate(day.plan.routes):
        colour = cmap(k % 20)
        for leg in day.legs.get(route.courier_id, []):
            if len(leg) >= 2:
                xs, ys = zip(*leg, strict=True)
                ax.plot(xs, ys, color=colour, linewidth=1.6, zorder=3)
        if route.stops:
            ax.scatter(
                [jobs[s.job_id].lon for s in route.stops],
                [jobs[s.job_id].lat for s in route.stops],
                s=10,
                color=colour,
                edgecolors="black",
                linewidths=0.3,
                zorder=4,
            )
    if day.plan.unassigned:
        ax.scatter(
            [jobs[u.job_id].lon for u in day.plan.unassigned],
            [jobs[u.job_id].lat for u in day.plan.unassigned],
            marker="x",
            s=40,
            color="red",
            zorder=5,
            label=f"chưa phân công / unassigned ({len(day.plan.unassigned)})",
        )
    ax.scatter(
        [d.lon for d in problem.depots],
        [d.lat for d in problem.depots],
        marker="^",
        s=80,
        color="black",
        zorder=6,
        label="bưu cục / post office",
    )
    served = sum(len(r.stops) for r in day.plan.routes)
    ax.set_title(
        f"{problem.name}: {served} việc trên {sum(1 for r in day.plan.routes if r.stops)} tuyến, "
        f"{len(day.plan.unassigned)} chưa phân công"
    )
    ax.set_xlim(bbox[0], bbox[2])
    ax.set_ylim(bbox[1], bbox[3])
    ax.set_aspect(1 / np.cos(np.radians((bbox[1] + bbox[3]) / 2)))
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("kinh độ / longitude")
    ax.set_ylabel("vĩ độ / latitude")
    out = Path(path)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return out
