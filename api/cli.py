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


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    solve_workers: Annotated[
        int, typer.Option(help="Embedded solve workers started when REDIS_URL is unset.")
    ] = 1,
) -> None:
    """Start the API; without REDIS_URL also a private redis-server and a solve worker."""
    import os
    import subprocess

    import uvicorn

    from api.config import get_settings
    from api.db import upgrade_database
    from api.embedded import EmbeddedRedis, EmbeddedRedisError
    from api.main import create_app

    settings = _service_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded: EmbeddedRedis | None = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not settings.redis_url:
            try:
                embedded = EmbeddedRedis(settings.data_dir / "redis").start()
            except EmbeddedRedisError as e:
                raise _fail(str(e)) from e
            os.environ["REDIS_URL"] = embedded.url
            get_settings.cache_clear()
            settings = get_settings()
            err_console.print(
                f"embedded Redis at {embedded.url} (append-only file in {embedded.directory})"
            )
        upgrade_database(settings.sqlalchemy_url)
        if embedded is not None:
            for _ in range(max(0, solve_workers)):
                children.append(
                    subprocess.Popen(
                        [sys.executable, "-c", "from api.cli import app; app()", "worker"],
                        env={**os.environ, "COURIER_MIGRATE_ON_START": "false"},
                    )
                )
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            embedded.stop()


@app.command("worker")
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
) -> None:
    """Start an RQ worker that solves queued plans (needs REDIS_URL)."""
    import redis
    from rq import Worker

    from api.network import get_network

    settings = _service_settings()
    if not settings.redis_url:
        raise _fail("REDIS_URL is not set (`courier serve` starts workers itself when it is unset)")
    get_network(settings)  # load (or generate) the road network once, before forking jobs
    conn = redis.Redis.from_url(settings.redis_url)
    Worker([settings.queue_name], connection=conn).work(burst=burst, with_scheduler=False)


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
    factory = make_session_factory(make_engine(settings.sqlalchemy_url))
    try:
        with session_scope(factory) as session:
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
    factory = make_session_factory(make_engine(settings.sqlalchemy_url))
    try:
        with session_scope(factory) as session:
            user = get_user(session, username=username)
            token = issue_token(session, user=user, ttl_hours=hours or settings.token_ttl_hours)
    except ServiceError as e:
        raise _fail(e.detail) from e
    print(token)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (also done by `courier serve` at start)."""
    from api.db import upgrade_database

    settings = _service_settings()
    upgrade_database(settings.sqlalchemy_url)
    console.print("database at the latest schema")


if __name__ == "__main__":
    app()
