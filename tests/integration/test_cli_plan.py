"""The main job end to end: `courier demo`, `courier plan` on the demo's files, `courier solve-instance`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.unit.routing.test_instances import SOLOMON

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    args = [
        "demo",
        "--jobs",
        "60",
        "--couriers",
        "14",
        "--nodes",
        "2000",
        "--time-limit",
        "1",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_demo_writes_every_output(demo: Path) -> None:
    """The demo writes GeoJSON, itineraries, reasons, a summary and a map, and the checker passes."""
    geo = json.loads((demo / "plan.geojson").read_text(encoding="utf-8"))
    assert geo["type"] == "FeatureCollection"
    assert {f["geometry"]["type"] for f in geo["features"]} == {"LineString", "Point"}
    summary = json.loads((demo / "summary.json").read_text(encoding="utf-8"))
    assert summary["violations"] == []
    assert (
        summary["kpi"]["jobs_served"] + summary["kpi"]["jobs_unassigned"]
        == summary["kpi"]["jobs_total"]
    )
    offices = {b["depot_id"]: b for b in summary["office_balance"]}
    assert offices, "each office's working-time balance is reported"
    for route in summary["routes"]:
        office = offices[route["depot_id"]]
        assert route["working_s"] <= office["max_working_s"]
        assert office["ratio"] >= 1.0
    itineraries = sorted((demo / "itineraries").glob("*.csv"))
    assert itineraries
    raw = itineraries[0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM for Excel"
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert rows
    assert rows[0]["Điều hướng (navigate)"].startswith("geo:")
    with (demo / "unassigned.csv").open(encoding="utf-8-sig") as f:
        reasons = {r["job_id"]: r["reason"] for r in csv.DictReader(f)}
    assert reasons["X-NANG"] == "over_capacity"
    assert reasons["X-SATLO"] == "unreachable"
    assert (demo / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_from_the_demo_files(demo: Path, tmp_path: Path) -> None:
    """`courier plan` plans the dispatcher's files written by the demo, with zones and closures."""
    inp = demo / "input"
    out = tmp_path / "plan"
    args = [
        "plan", "--jobs", str(inp / "jobs.csv"), "--couriers", str(inp / "couriers.csv"),
        "--depots", str(inp / "depots.csv"), "--network", str(demo / "province.npz"),
        "--zones", str(inp / "zones.geojson"), "--closures", str(inp / "closures.geojson"),
        "--day", "2026-11-30", "--time-limit", "1", "--out", str(out),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["violations"] == []
    with (out / "unassigned.csv").open(encoding="utf-8-sig") as f:
        reasons = {r["job_id"]: r["reason"] for r in csv.DictReader(f)}
    assert reasons["X-SATLO"] == "unreachable", "the closure applies on its day"


def test_plan_rejects_a_bad_row_precisely(demo: Path, tmp_path: Path) -> None:
    """A jobs file with a bad row is rejected naming row and column; --keep-good plans the rest."""
    inp = demo / "input"
    lines = (inp / "jobs.csv").read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(",")
    bad = lines[3].split(",")
    bad[header.index("lat")] = "north"
    lines[3] = ",".join(bad)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("\n".join(lines), encoding="utf-8")
    common = ["plan", "--jobs", str(jobs), "--couriers", str(inp / "couriers.csv"), "--depots", str(inp / "depots.csv"),
              "--network", str(demo / "province.npz"), "--time-limit", "1", "--out", str(tmp_path / "o")]  # fmt: skip
    result = runner.invoke(app, common)
    assert result.exit_code == 2
    assert "row 4" in result.output
    assert "lat" in result.output
    assert "Traceback" not in result.output
    kept = runner.invoke(app, [*common, "--keep-good"])
    assert kept.exit_code == 0, kept.output
    assert "skipped" in kept.output


def test_solve_instance_json(tmp_path: Path) -> None:
    """`courier solve-instance --json` prints vehicles, both distances, feasibility and time."""
    path = tmp_path / "TINY5.txt"
    path.write_text(SOLOMON)
    result = runner.invoke(app, ["solve-instance", str(path), "--time-limit", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {
        "instance",
        "vehicles",
        "distance_truncated",
        "distance_exact",
        "feasible",
        "seconds",
    } <= set(data)
    assert data["feasible"] is True
    assert data["distance_truncated"] <= data["distance_exact"] + 1e-9
    missing = runner.invoke(app, ["solve-instance", str(tmp_path / "none.txt")])
    assert missing.exit_code == 2
