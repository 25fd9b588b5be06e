"""The ``courier geodata`` commands end to end on local data."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from geodata.compact import load_compact

from ..geodata.osm_fixtures import write_osm

runner = CliRunner()


def test_synth_then_info(tmp_path: Path) -> None:
    """Synth writes a cache, zones and post offices; info reads the cache back."""
    cache = tmp_path / "prov.npz"
    zones = tmp_path / "zones.geojson"
    depots = tmp_path / "depots.csv"
    result = runner.invoke(
        app,
        [
            "geodata",
            "synth",
            "--nodes",
            "1500",
            "--seed",
            "2",
            "--out",
            str(cache),
            "--zones",
            str(zones),
            "--depots",
            str(depots),
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_compact(cache).n_nodes > 1000
    assert json.loads(zones.read_text())["features"]
    assert "Bưu cục Kon Tum" in depots.read_text(encoding="utf-8")
    info = runner.invoke(app, ["geodata", "info", str(cache), "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.stdout)
    assert summary["nodes"] == load_compact(cache).n_nodes
    assert 0 < summary["strongly_connected_share"] <= 1
    assert "residential" in summary["road_classes"]


def test_import_local_file(tmp_path: Path) -> None:
    """Import reads a PBF file and reports the split ways."""
    pbf = write_osm(tmp_path, "pbf")
    out = tmp_path / "corner.npz"
    result = runner.invoke(
        app, ["geodata", "import", str(pbf), "--out", str(out), "--profile", "car"]
    )
    assert result.exit_code == 0, result.output
    assert "split" in result.stdout
    assert load_compact(out).profile == "car"


def test_user_errors_are_one_line_messages(tmp_path: Path) -> None:
    """Bad input exits with code 2 and a message, never a traceback."""
    cases = [
        ["geodata", "info", str(tmp_path / "missing.npz")],
        ["geodata", "import", str(tmp_path / "missing.osm.pbf")],
        ["geodata", "import", "--bbox", "1,2,3"],
        ["geodata", "import"],
        ["geodata", "synth", "--nodes", "5"],
        ["geodata", "import", str(write_osm(tmp_path, "osm")), "--profile", "bicycle"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert "error" in result.output.lower()
