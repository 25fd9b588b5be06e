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


def test_out_name_is_read_back_as_given(tmp_path: Path) -> None:
    """A cache saved with --out under any name is read back under that name.

    Import and synth write exactly the name given (no other file); info, plan --network and
    COURIER_NETWORK read it.
    """
    from api.config import Settings
    from api.network import get_network
    from geodata.synthetic import make_province
    from routing.scenario import make_day, write_scenario

    out = tmp_path / "caches"
    synth = out / "kontum.cache"
    result = runner.invoke(
        app, ["geodata", "synth", "--nodes", "1500", "--seed", "3", "--out", str(synth)]
    )
    assert result.exit_code == 0, result.output
    imported = out / "corner.graph"
    pbf = write_osm(tmp_path, "pbf")
    result = runner.invoke(app, ["geodata", "import", str(pbf), "--out", str(imported)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "corner.graph",
        "kontum.cache",
    ]
    for cache in (synth, imported):
        info = runner.invoke(app, ["geodata", "info", str(cache), "--json"])
        assert info.exit_code == 0, info.output
        assert json.loads(info.stdout)["nodes"] == load_compact(cache).n_nodes

    network = get_network(Settings(data_dir=tmp_path / "data", network=synth))
    assert network.graph.n_nodes == load_compact(synth).n_nodes

    province = make_province(1500, seed=3)
    files = write_scenario(make_day(province, n_jobs=12, n_couriers=3, seed=1), province, tmp_path)
    args = [
        "plan", "--jobs", str(files["jobs"]), "--couriers", str(files["couriers"]),
        "--depots", str(files["depots"]), "--network", str(synth),
        "--time-limit", "1", "--workers", "1", "--out", str(tmp_path / "plan"),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plan" / "summary.json").is_file()


def test_cache_saved_with_an_added_npz_suffix_is_still_found(tmp_path: Path) -> None:
    """A cache an earlier version saved as NAME.npz for --out NAME is read as NAME."""
    cache = tmp_path / "hanoi.cache"
    result = runner.invoke(
        app, ["geodata", "synth", "--nodes", "1200", "--out", str(tmp_path / "hanoi.cache.npz")]
    )
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["geodata", "info", str(cache), "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["nodes"] == load_compact(tmp_path / "hanoi.cache.npz").n_nodes


def test_one_default_province_everywhere() -> None:
    """`courier demo`, `courier geodata synth` and the service build the same default province."""
    import inspect

    from api.cli import demo_command, geodata_synth
    from api.config import Settings
    from geodata.synthetic import DEFAULT_PROVINCE_NODES, DEFAULT_PROVINCE_SEED

    settings = Settings()
    assert (settings.network_nodes, settings.network_seed) == (
        DEFAULT_PROVINCE_NODES,
        DEFAULT_PROVINCE_SEED,
    )
    for command in (demo_command, geodata_synth):
        params = inspect.signature(command).parameters
        assert params["nodes"].default == DEFAULT_PROVINCE_NODES, command.__name__
        assert params["seed"].default == DEFAULT_PROVINCE_SEED, command.__name__
