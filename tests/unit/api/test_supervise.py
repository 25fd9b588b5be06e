"""Process supervision with real processes: pid files, parent-death signals, worker restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.supervise import (
    WorkerSupervisor,
    cmdline,
    read_pid_file,
    start_time,
    stop_leftovers,
    write_pid_file,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc, prctl")

#: A stand-in for a worker: its command line names ``api.cli`` and ``worker`` and it sleeps.
FAKE_WORKER = [sys.executable, "-c", "import time; time.sleep(120)", "api.cli", "worker"]


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; killed at the end whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def _wait_gone(pid: int, start: int | None, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if start_time(pid) != start:
            return True
        time.sleep(0.05)
    return False


def test_a_pid_file_naming_a_recycled_pid_stops_nothing(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """A pid whose start time differs from the recorded one is another process: left alone."""
    p = subprocess.Popen(FAKE_WORKER)
    procs.append(p)
    while start_time(p.pid) is None:
        time.sleep(0.01)
    path = tmp_path / "worker-0.pid"
    path.write_text(
        f'{{"pid": {p.pid}, "start": {(start_time(p.pid) or 0) - 1}, "role": "worker"}}'
    )
    assert stop_leftovers(tmp_path) == []
    assert p.poll() is None
    assert not path.exists()


def test_a_pid_file_naming_another_program_stops_nothing(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """A live process with the recorded start time but not a worker's command line is left alone."""
    p = subprocess.Popen(["sleep", "120"])
    procs.append(p)
    write_pid_file(tmp_path / "worker-0.pid", p.pid, "worker")
    assert stop_leftovers(tmp_path) == []
    assert p.poll() is None


def test_a_leftover_worker_is_stopped(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    """The very worker a pid file records (pid, start time, command line) is stopped."""
    p = subprocess.Popen(FAKE_WORKER)
    procs.append(p)
    deadline = time.monotonic() + 5
    while "api.cli" not in cmdline(p.pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # a loaded machine may show the new program's command line late
    record = write_pid_file(tmp_path / "worker-0.pid", p.pid, "worker")
    seen = (cmdline(p.pid), start_time(p.pid), record)
    assert stop_leftovers(tmp_path) == [f"worker pid {p.pid}"], seen
    assert p.wait(5) == -signal.SIGTERM
    assert list(tmp_path.glob("*.pid")) == []


def test_a_child_dies_with_its_killed_parent(tmp_path: Path) -> None:
    """A process started with ``die_with_parent`` is killed by the kernel when its parent is."""
    script = (
        "import subprocess, signal, sys, time\n"
        "from api.supervise import die_with_parent\n"
        "p = subprocess.Popen(['sleep', '120'], preexec_fn=die_with_parent(signal.SIGKILL))\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        start = start_time(child)
        assert start is not None
        parent.kill()
    assert _wait_gone(child, start)


def test_the_supervisor_restarts_a_dead_worker(tmp_path: Path) -> None:
    """A worker killed under the supervisor is replaced (new pid and pid file); stop ends them all."""
    sup = WorkerSupervisor(
        argv=FAKE_WORKER, env=dict(os.environ), run_dir=tmp_path, count=2, interval_s=0.05
    ).start()
    try:
        first = sorted(sup.pids())
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (sup.restarts < 1 or len(sup.pids()) < 2):
            time.sleep(0.05)
        now = sorted(sup.pids())
        assert sup.restarts == 1
        assert len(now) == 2
        assert first[0] not in now
        assert first[1] in now
        recorded = {read_pid_file(p).pid for p in tmp_path.glob("worker-*.pid")}  # type: ignore[union-attr]
        assert recorded == set(now)
    finally:
        sup.stop(timeout_s=5)
    assert all(start_time(pid) is None for pid in now)
    assert list(tmp_path.glob("worker-*.pid")) == []
