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
from routing.errors import RoutingError

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
USER_ERRORS: tuple[type[Exception], ...] = (GeodataError, RoutingError, FileNotFoundError)


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


#: The ``--workers`` option of the commands that plan (the service's COURIER_SOLVE_WORKERS).
SolveProcesses = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Processes solving side by side (default: this machine's cores, at most 4).",
        show_default=False,
        min=1,
    ),
]


@geodata_app.command("import")
def geodata_import(
    source: Annotated[
        Path | None, typer.Argument(help="Local .osm / .osm.bz2 / .osm.pbf file.")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Graph cache file to write, under exactly this name.")
    ] = Path("network.npz"),
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
    out: Annotated[
        Path, typer.Option(help="Graph cache file to write, under exactly this name.")
    ] = Path("province.npz"),
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
    cache: Annotated[Path, typer.Argument(help="Graph cache file, as written by import or synth.")],
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


# -- planning ----------------------------------------------------------------------------------


class _BarCallbacks:
    """Planner progress shown as rich progress bars (one per stage) and the best objective."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}
        self.best: dict[str, int] = {}

    def on_stage(self, stage: str, done: int, total: int) -> None:
        labels = {
            "snapping": "snapping addresses",
            "matrices": "travel-time matrices",
            "solving": "solving pieces",
            "checking": "checking the plan",
            "geometry": "drawing routes",
        }
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(
                labels.get(stage, stage), total=max(total, 1)
            )
        self.progress.update(self.tasks[stage], completed=done, total=max(total, 1))

    def on_improvement(
        self, piece: str, elapsed_s: float, objective: int, assigned_jobs: int
    ) -> None:
        self.best[piece] = objective
        if "solving" in self.tasks:
            self.progress.update(
                self.tasks["solving"],
                description=f"solving pieces (best total {sum(self.best.values()):,})",
            )


def _load_network(path: Path, profile: str) -> Any:
    """Load a graph cache (any name: told by its content) or build one from a local OSM file."""
    from geodata.compact import compact_graph, is_graph_cache, load_compact
    from geodata.network import OSM_SUFFIXES, graph_from_file

    if not is_graph_cache(path) and path.name.lower().endswith(OSM_SUFFIXES):
        return compact_graph(graph_from_file(path, profile=profile))
    return load_compact(path)


def _print_plan_summary(day: Any, out: Path) -> None:
    from routing.clock import format_clock
    from routing.export import summary_dict
    from routing.vocabulary import reason_message

    summary = summary_dict(day)
    table = Table(title=f"{day.problem.name}: tuyến / rounds")
    for col, justify in (
        ("bưu tá / courier", "left"),
        ("bưu cục", "left"),
        ("điểm dừng", "right"),
        ("đi – về", "left"),
        ("km", "right"),
        ("lái xe (phút)", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in day.plan.routes:
        if not r.stops:
            continue
        table.add_row(
            r.courier_id,
            r.depot_id,
            str(len(r.stops)),
            f"{format_clock(r.start_s)}–{format_clock(r.end_s)}",
            f"{r.distance_m / 1000:.1f}",
            f"{r.driving_s / 60:.0f}",
        )
    console.print(table)
    kpi = summary["kpi"]
    console.print(
        f"[bold]{kpi['jobs_served']}[/] of {kpi['jobs_total']} jobs served by "
        f"{kpi['couriers_used']} of {kpi['couriers_available']} couriers; "
        f"{kpi['distance_m'] / 1000:,.0f} km; on time {kpi['on_time_share']:.0%}; "
        f"checker: {'OK' if not day.violations else f'{len(day.violations)} violations'}"
    )
    uneven = max(summary["office_balance"], key=lambda b: b["ratio"], default=None)
    if uneven is not None:
        console.print(
            f"longest round over its post office's mean: {uneven['ratio']:.2f} at "
            f"{uneven['depot_id']} (the most uneven office)"
        )
    if day.plan.unassigned:
        reasons = Table(title="chưa phân công / unassigned")
        reasons.add_column("lý do / reason")
        reasons.add_column("số việc", justify="right")
        for code, row in summary["unassigned_by_reason"].items():
            reasons.add_row(f"{reason_message(code, lang='vi')} ({code})", str(row["count"]))
        console.print(reasons)
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in summary["timings_s"].items())
    console.print(f"timings: {timings}")
    console.print(
        f"outputs in [bold]{out}[/]: plan.geojson, itineraries/, unassigned.csv, summary.json, map.png"
    )


def _run_plan(
    problem: Any, graph: Any, zones: Any, closures: list[Any], options: Any, out: Path
) -> Any:
    from routing.export import write_outputs
    from routing.planner import plan_day

    with progress_bar() as bar:
        day = plan_day(
            problem,
            graph,
            zones=zones,
            closures=closures,
            options=options,
            callbacks=_BarCallbacks(bar),
        )
        run_stage(bar, "writing outputs", lambda: write_outputs(day, out, graph=graph))
    _print_plan_summary(day, out)
    if day.violations:
        for v in day.violations[:20]:
            err_console.print(f"[red]violation:[/] {v}")
        raise typer.Exit(code=1)
    return day


@app.command("plan")
def plan_command(
    jobs: Annotated[Path, typer.Option(help="Jobs file (CSV, XLSX or GeoJSON).")],
    couriers: Annotated[Path, typer.Option(help="Couriers file (CSV, XLSX or GeoJSON).")],
    depots: Annotated[Path, typer.Option(help="Post offices file (CSV, XLSX or GeoJSON).")],
    network: Annotated[
        Path,
        typer.Option(
            help="Graph cache (as written by `geodata import/synth`) or local OSM file "
            "(.osm, .osm.bz2, .osm.pbf)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("plan-out"),
    zones: Annotated[
        Path | None, typer.Option(help="Zones GeoJSON/GeoPackage with zone_id and depot_id.")
    ] = None,
    closures: Annotated[Path | None, typer.Option(help="Road closures GeoJSON.")] = None,
    day: Annotated[
        str | None, typer.Option(help="Plan day YYYY-MM-DD (closures are applied by date).")
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(
            help="Wall time of the plan in seconds: snapping, matrices, the search of every "
            "piece, checks and drawing (default: by the day's jobs, 22 s for 300, 55 s for "
            "2,000 to 5,000, 150 s for 10,000).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: SolveProcesses = None,
    keep_good: Annotated[
        bool, typer.Option(help="Plan the good rows and report the bad ones.")
    ] = False,
    profile: Annotated[
        str, typer.Option(help="Vehicle profile when reading an OSM file.")
    ] = "motorbike",
) -> None:
    """Plan a day from the dispatcher's files and write maps, itineraries and reasons."""
    from datetime import date as date_type

    from api.config import default_solve_processes
    from geodata.closures import read_closures
    from geodata.zones import read_zones
    from routing.io import read_couriers, read_depots, read_jobs
    from routing.model import Problem
    from routing.planner import PlanOptions

    with user_errors():
        try:
            plan_day_date = date_type.fromisoformat(day) if day else None
        except ValueError:
            raise _fail(f"--day must be YYYY-MM-DD, got {day!r}") from None
        depot_result = read_depots(depots, keep_good=keep_good)
        courier_result = read_couriers(couriers, keep_good=keep_good)
        job_result = read_jobs(jobs, keep_good=keep_good)
        for r in (depot_result, courier_result, job_result):
            for e in r.errors:
                err_console.print(
                    f"[yellow]skipped[/] {r.source} row {e.row}, column {e.column!r}: {e.reason}"
                )
        problem = Problem(
            depots=tuple(depot_result.records),
            couriers=tuple(courier_result.records),
            jobs=tuple(job_result.records),
            day=plan_day_date,
            name=f"{jobs.stem} {plan_day_date.isoformat()}" if plan_day_date else jobs.stem,
        )
        graph = _load_network(network, profile)
        zone_frame = read_zones(zones) if zones else None
        closure_list = read_closures(closures) if closures else []
        options = PlanOptions(
            time_limit_s=time_limit, seed=seed, workers=workers or default_solve_processes()
        )
        _run_plan(problem, graph, zone_frame, closure_list, options, out)


@app.command("demo")
def demo_command(
    jobs: Annotated[int, typer.Option(help="Jobs in the day.")] = 300,
    couriers: Annotated[
        int | None, typer.Option(help="Couriers over all post offices (default: jobs / 10).")
    ] = None,
    nodes: Annotated[int, typer.Option(help="Road nodes of the synthetic province.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    time_limit: Annotated[
        float,
        typer.Option(
            help="Wall time of the plan in seconds (the province and the day are made first)."
        ),
    ] = 10.0,
    workers: SolveProcesses = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo-out"),
) -> None:
    """Generate the synthetic Kon Tum province and a realistic day, plan it, write the outputs."""
    from api.config import default_solve_processes
    from geodata.compact import compact_graph
    from geodata.synthetic import DEFAULT_PROVINCE_NODES, DEFAULT_PROVINCE_SEED, make_province
    from routing.planner import PlanOptions
    from routing.scenario import make_day, write_scenario

    with user_errors():
        with progress_bar() as bar:
            province = run_stage(
                bar,
                f"generating the {nodes:,}-node province",
                lambda: make_province(nodes, seed=seed),
            )
            graph = run_stage(bar, "building the road graph", lambda: compact_graph(province.graph))
            scenario = run_stage(
                bar,
                f"generating {jobs} jobs",
                lambda: make_day(province, n_jobs=jobs, n_couriers=couriers, seed=seed),
            )
        out.mkdir(parents=True, exist_ok=True)
        graph.save(out / "province.npz")
        write_scenario(scenario, province, out / "input")
        console.print(f"input files (as a dispatcher receives them) in [bold]{out / 'input'}[/]")
        closures_env = f"COURIER_CLOSURES={out / 'input' / 'closures.geojson'}"
        if (nodes, seed) == (DEFAULT_PROVINCE_NODES, DEFAULT_PROVINCE_SEED):
            console.print(
                f"the service plans them on this same province: {closures_env} courier serve"
            )
        else:
            console.print(
                f"to plan them in the service: COURIER_NETWORK={out / 'province.npz'} "
                f"COURIER_ZONES={out / 'input' / 'zones.geojson'} {closures_env} courier serve"
            )
        options = PlanOptions(
            time_limit_s=time_limit, seed=seed, workers=workers or default_solve_processes()
        )
        _run_plan(scenario.problem, graph, province.zones, scenario.closures, options, out)


@app.command("solve-instance")
def solve_instance_command(
    file: Annotated[
        Path, typer.Argument(help="Solomon / Gehring-Homberger VRPTW or Li & Lim PDPTW .txt file.")
    ],
    time_limit: Annotated[float, typer.Option(help="Search seconds.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Solve a classic benchmark instance on Euclidean distances and report it."""
    from routing.instances import solve_instance

    with user_errors():
        if not file.is_file():
            raise _fail(f"instance file not found: {file}")
        result = solve_instance(file, time_limit_s=time_limit, seed=seed)
    if as_json:
        result = {k: v for k, v in result.items() if k != "routes"}
        console.print_json(json.dumps(result))
        return
    table = Table(title=f"{result['instance']} ({result['kind']})", show_header=False)
    for key in (
        "vehicles",
        "distance_truncated",
        "distance_exact",
        "feasible",
        "unassigned",
        "seconds",
        "engine",
    ):
        if key in result:
            table.add_row(key, str(result[key]))
    console.print(table)
    if not result["feasible"]:
        raise typer.Exit(code=1)


# -- the service: serve, worker, users, db -------------------------------------------------------

users_app = typer.Typer(help="Users and their API tokens (bootstrap the service).")
app.add_typer(users_app, name="users")
db_app = typer.Typer(help="The service's database.")
app.add_typer(db_app, name="db")


def _service_settings() -> Any:
    from api.config import get_settings
    from api.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return settings


def _seed_demo(settings: Any, n_jobs: int, host: str, port: int) -> None:
    """Load, plan and publish the demo day, then print where to sign in."""
    from api.demo import DEMO_PASSWORD, seed_demo_day
    from api.errors import ServiceError

    err_console.print("loading the demo day (planning takes about half a minute the first time)")
    try:
        demo = seed_demo_day(settings, n_jobs=n_jobs)
    except ServiceError as e:
        raise _fail(e.detail) from e
    by_role: dict[str, list[str]] = {}
    for username, role in demo.users.items():
        by_role.setdefault(role, []).append(username)
    couriers = sorted(by_role.get("courier", []))
    url = f"http://{host}:{port}"
    table = Table(title=f"demo day {demo.day}: {demo.jobs} jobs, plan {demo.plan_id} published")
    for col in ("page", "sign in as", "password"):
        table.add_column(col)
    for page, users in (
        ("dispatcher", ", ".join(by_role.get("dispatcher", []) + by_role.get("admin", []))),
        ("courier", f"{couriers[0]} … {couriers[-1]}" if couriers else "-"),
        ("manager", ", ".join(by_role.get("manager", []))),
    ):
        table.add_row(f"{url}/{page}", users or "-", DEMO_PASSWORD)
    err_console.print(table)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    solve_workers: Annotated[
        int,
        typer.Option(
            help="Embedded workers taking plans and re-plans from the queue when REDIS_URL is "
            "unset (each solves on COURIER_SOLVE_WORKERS processes)."
        ),
    ] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            help="Load today's demo day on the synthetic province, plan and publish it, "
            "and create demo users (once per day)."
        ),
    ] = False,
    demo_jobs: Annotated[int, typer.Option(help="Jobs in the demo day.")] = 120,
) -> None:
    """Start the API; without REDIS_URL also a private redis-server and solve workers.

    The embedded redis-server and the workers die with this process. A restarted serve first
    stops what a killed one left on the same data directory (pid files in ``<data_dir>/run``).
    A worker that dies is restarted; a plan whose worker died is queued again once, then failed.
    """
    import os
    import signal

    import redis
    import uvicorn

    from api.config import get_settings
    from api.db import upgrade_database
    from api.embedded import EmbeddedRedis, EmbeddedRedisError
    from api.main import create_app
    from api.supervise import SupervisorError, WorkerSupervisor, lock_data_dir, stop_leftovers
    from api.worker import reap_lost_plans

    settings = _service_settings()
    if demo and settings.environment == "production":
        raise _fail(
            "--demo creates users with a public password; it is refused when "
            "COURIER_ENVIRONMENT=production"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    run_dir = settings.data_dir / "run"
    embedded: EmbeddedRedis | None = None
    supervisor: WorkerSupervisor | None = None
    notifier: WorkerSupervisor | None = None
    try:
        if not settings.redis_url:
            redis_dir = settings.data_dir / "redis"
            try:
                lock = lock_data_dir(run_dir)  # noqa: F841 (held until this process exits)
                for what in stop_leftovers(run_dir, redis_dir):
                    err_console.print(f"stopped {what} left by an earlier serve")
                embedded = EmbeddedRedis(redis_dir, pid_file=run_dir / "redis-server.pid").start()
            except (EmbeddedRedisError, SupervisorError) as e:
                raise _fail(str(e)) from e
            os.environ["REDIS_URL"] = embedded.url
            get_settings.cache_clear()
            settings = get_settings()
            err_console.print(
                f"embedded Redis at {embedded.url} (append-only file in {embedded.directory})"
            )
        upgrade_database(settings.sqlalchemy_url)
        if demo:
            _seed_demo(settings, demo_jobs, host, port)
        if embedded is not None:
            conn = redis.Redis.from_url(embedded.url)
            supervisor = WorkerSupervisor(
                argv=[sys.executable, "-c", "from api.cli import app; app()", "worker"],
                env={**os.environ, "COURIER_MIGRATE_ON_START": "false"},
                run_dir=run_dir,
                count=max(0, solve_workers),
                ticks=[lambda: reap_lost_plans(settings, conn)],
            ).start()
            # the outbox's sender: citizens' messages and webhooks (its state is all in the database)
            notifier = WorkerSupervisor(
                argv=[sys.executable, "-c", "from api.cli import app; app()", "notify-worker"],
                env={**os.environ, "COURIER_MIGRATE_ON_START": "false"},
                run_dir=run_dir,
                count=1,
                role="notify-worker",
            ).start()
        # uvicorn re-raises SIGTERM after its graceful shutdown; exit through `finally` instead.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            ws_per_message_deflate=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
    finally:
        if notifier is not None:
            notifier.stop()
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()


@app.command("worker")
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
) -> None:
    """Start an RQ worker that solves queued plans (needs REDIS_URL)."""
    import redis

    from api.network import get_network
    from api.worker import SolveWorker, reap_lost_plans

    settings = _service_settings()
    if not settings.redis_url:
        raise _fail("REDIS_URL is not set (`courier serve` starts workers itself when it is unset)")
    get_network(settings)  # load (or generate) the road network once, before forking jobs
    conn = redis.Redis.from_url(settings.redis_url)
    reap_lost_plans(settings, conn)  # plans a dead worker left "solving"
    SolveWorker([settings.queue_name], connection=conn, settings=settings).work(
        burst=burst, with_scheduler=False
    )


@app.command("notify-worker")
def notify_worker(
    once: Annotated[bool, typer.Option(help="Do one round and exit.")] = False,
) -> None:
    """Send citizens' messages and webhooks from the outbox, with retries (needs only the database).

    Everything it works on is a database row, so any number may run, and one that is stopped
    or killed loses nothing: what it had claimed is taken up again after its lease.
    """
    import signal
    import threading

    from api.db import make_engine, make_session_factory
    from api.notify.worker import NotifyWorker

    settings = _service_settings()
    factory = make_session_factory(
        make_engine(settings.sqlalchemy_url, sqlite_synchronous=settings.sqlite_synchronous)
    )
    worker = NotifyWorker(settings, factory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if once:
            worker.run_once()
        else:
            worker.run(stop)
    finally:
        worker.close()


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[
        str, typer.Option(help="dispatcher, courier, manager or admin.")
    ] = "dispatcher",
    courier_id: Annotated[
        str | None, typer.Option(help="The courier a courier user is (required for couriers).")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="Optional password for /auth/token (hashed with argon2).")
    ] = None,
) -> None:
    """Create a user."""
    from api.auth.service import Role, create_user
    from api.db import make_engine, make_session_factory, session_scope, upgrade_database
    from api.errors import ServiceError

    settings = _service_settings()
    try:
        role_value = Role(role)
    except ValueError as e:
        raise _fail(f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}") from e
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = create_user(
                session,
                username=username,
                role=role_value,
                courier_id=courier_id,
                password=password,
            )
            console.print(f"created user {user.username} ({user.role}) id {user.id}")
    except ServiceError as e:
        raise _fail(e.detail) from e
    finally:
        engine.dispose()


@users_app.command("token")
def users_token(
    username: Annotated[str, typer.Argument(help="Login name.")],
    hours: Annotated[float | None, typer.Option(help="Lifetime (default from settings).")] = None,
) -> None:
    """Print a new bearer token for a user (shown once; stored hashed)."""
    from api.auth.service import get_user, issue_token
    from api.db import make_engine, make_session_factory, session_scope, upgrade_database
    from api.errors import ServiceError

    settings = _service_settings()
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = get_user(session, username=username)
            token = issue_token(session, user=user, ttl_hours=hours or settings.token_ttl_hours)
    except ServiceError as e:
        raise _fail(e.detail) from e
    finally:
        engine.dispose()
    print(token)


@users_app.command("revoke")
def users_revoke(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Revoke every token of a user: a lost or stolen phone, someone who left.

    Running API processes stop accepting them within COURIER_AUTH_CACHE_S seconds.
    """
    from api.auth.service import get_user, revoke_tokens
    from api.db import make_engine, make_session_factory, session_scope, upgrade_database
    from api.errors import ServiceError

    settings = _service_settings()
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            count = revoke_tokens(session, get_user(session, username=username))
    except ServiceError as e:
        raise _fail(e.detail) from e
    finally:
        engine.dispose()
    console.print(f"revoked {count} token(s) of {username}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (also done by `courier serve` at start)."""
    from api.db import upgrade_database

    settings = _service_settings()
    upgrade_database(settings.sqlalchemy_url)
    console.print("database at the latest schema")


if __name__ == "__main__":
    app()
