"""The ``courier`` command: road networks, planning a day, benchmark instances.

Only this module prints. Errors a user can fix (a bad file, an unknown profile,
no network) end with a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from geodata.errors import GeodataError

app = typer.Typer(
    name="courier",
    help="Plan and run the daily rounds of postal couriers (Kon Tum post).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
geodata_app = typer.Typer(
    help="Road networks: import OpenStreetMap, generate the synthetic province, inspect."
)
app.add_typer(geodata_app, name="geodata")

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

#: Errors whose message is meant for the user; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[Exception], ...] = (GeodataError, FileNotFoundError)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """Plan and run the daily rounds of postal couriers."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """Yield a rich progress display for stages that take more than a second."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        yield progress


def run_stage(progress: Progress, description: str, fn: Callable[[], T]) -> T:
    """Run one indeterminate stage under a spinner and mark it done."""
    task = progress.add_task(description, total=None)
    try:
        return fn()
    finally:
        progress.update(task, total=1, completed=1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into a one-line message and exit code 2."""
    try:
        yield
    except USER_ERRORS as e:
        raise _fail(str(e)) from None


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"Road graph ({summary['profile']})", show_header=False)
    table.add_row("source", str(summary["source"]))
    table.add_row("nodes", f"{summary['nodes']:,}")
    table.add_row("edges", f"{summary['edges']:,}")
    table.add_row("strongly connected share", f"{summary['strongly_connected_share']:.1%}")
    table.add_row(
        "components (strong / weak)",
        f"{summary['strong_components']} / {summary['weak_components']}",
    )
    w, s, e, n = summary["bbox"]
    table.add_row("bounding box (W S E N)", f"{w:.5f} {s:.5f} {e:.5f} {n:.5f}")
    console.print(table)
    classes = Table(title="Road classes")
    classes.add_column("highway")
    classes.add_column("edges", justify="right")
    classes.add_column("km", justify="right")
    for name, row in summary["road_classes"].items():
        classes.add_row(name, f"{row['edges']:,}", f"{row['km']:,.1f}")
    console.print(classes)


@geodata_app.command("import")
def geodata_import(
    source: Annotated[
        Path | None, typer.Argument(help="Local .osm / .osm.bz2 / .osm.pbf file.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Graph cache file to write (.npz).")] = Path(
        "network.npz"
    ),
    place: Annotated[
        str | None, typer.Option(help='Download a place, e.g. "Kon Tum, Vietnam".')
    ] = None,
    bbox: Annotated[
        str | None, typer.Option(help="Download a box: WEST,SOUTH,EAST,NORTH in degrees.")
    ] = None,
    profile: Annotated[str, typer.Option(help="Vehicle profile: motorbike or car.")] = "motorbike",
    cache_dir: Annotated[
        Path | None, typer.Option(help="osmnx HTTP cache folder for downloads.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Download timeout per request (s).")] = 30.0,
) -> None:
    """Build a routing graph from OpenStreetMap and save it as a compact cache."""
    from geodata import network
    from geodata.compact import compact_graph
    from geodata.profiles import get_profile

    given = [x for x in (source, place, bbox) if x is not None]
    if len(given) != 1:
        raise _fail("give exactly one of SOURCE (a file), --place or --bbox")
    with user_errors(), progress_bar() as bar:
        prof = get_profile(profile)
        network.configure_osmnx(cache_dir, timeout_s=timeout)
        if source is not None:
            G = run_stage(
                bar, f"reading {source.name}", lambda: network.graph_from_file(source, profile=prof)
            )
        elif place is not None:
            G = run_stage(
                bar, f"downloading {place}", lambda: network.graph_from_place(place, profile=prof)
            )
        else:
            assert bbox is not None
            try:
                box = tuple(float(x) for x in bbox.split(","))
            except ValueError:
                raise _fail(
                    f"--bbox must be four numbers WEST,SOUTH,EAST,NORTH, got {bbox!r}"
                ) from None
            if len(box) != 4:
                raise _fail(f"--bbox must be four numbers WEST,SOUTH,EAST,NORTH, got {bbox!r}")
            G = run_stage(
                bar, "downloading bbox", lambda: network.graph_from_bbox(box, profile=prof)
            )  # type: ignore[arg-type]
        graph = run_stage(bar, "building compact graph", lambda: compact_graph(G))
        path = graph.save(out)
    report = G.graph.get("import_report")
    if report:
        console.print(
            f"{report['ways_kept']:,} road ways kept; {report['ways_split']:,} split at "
            f"{report['nodes_missing']:,} missing node references; {report['way_pieces_dropped']:,} pieces dropped"
        )
    _print_summary(graph.summary())
    console.print(f"saved [bold]{path}[/]")


@geodata_app.command("synth")
def geodata_synth(
    nodes: Annotated[
        int, typer.Option(help="Approximate number of road nodes (1,000 to 150,000).")
    ] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Graph cache file to write (.npz).")] = Path(
        "province.npz"
    ),
    profile: Annotated[str, typer.Option(help="Vehicle profile: motorbike or car.")] = "motorbike",
    zones: Annotated[Path | None, typer.Option(help="Also write the zones GeoJSON here.")] = None,
    depots: Annotated[
        Path | None, typer.Option(help="Also write the post offices CSV here.")
    ] = None,
) -> None:
    """Generate the synthetic Kon Tum province and save its road graph."""
    from geodata.compact import compact_graph
    from geodata.synthetic import make_province

    with user_errors(), progress_bar() as bar:
        try:
            province = run_stage(
                bar,
                f"generating {nodes:,}-node province",
                lambda: make_province(nodes, seed=seed, profile=profile),
            )
        except ValueError as e:
            raise _fail(str(e)) from None
        graph = run_stage(bar, "building compact graph", lambda: compact_graph(province.graph))
        path = graph.save(out)
    if zones is not None:
        province.zones.to_file(zones, driver="GeoJSON")
        console.print(f"zones written to {zones}")
    if depots is not None:
        import csv

        with depots.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(
                f, fieldnames=["depot_id", "name", "lon", "lat"], extrasaction="ignore"
            )
            writer.writeheader()
            writer.writerows(province.depots)
        console.print(f"post offices written to {depots}")
    _print_summary(graph.summary())
    console.print(f"saved [bold]{path}[/]")


@geodata_app.command("info")
def geodata_info(
    cache: Annotated[Path, typer.Argument(help="Graph cache file (.npz).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Print nodes, edges, connectivity, bounding box and road classes of a graph cache."""
    from geodata.compact import load_compact

    with user_errors():
        t0 = time.perf_counter()
        graph = load_compact(cache)
        load_s = time.perf_counter() - t0
        summary = graph.summary()
    summary["load_seconds"] = round(load_s, 3)
    if as_json:
        console.print_json(json.dumps(summary))
    else:
        _print_summary(summary)
        console.print(f"loaded in {load_s:.3f} s")


if __name__ == "__main__":
    app()
