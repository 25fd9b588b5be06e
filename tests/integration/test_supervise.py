"""`courier serve` as a real process tree: SIGKILL its worker, SIGKILL serve itself, restart.

Each test starts `courier serve` on a free port with its own data directory (embedded
redis-server, SQLite, one solve worker) and kills real processes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.auth.service import Role
from api.config import Settings
from api.db import upgrade_database
from api.embedded import EmbeddedRedis
from api.supervise import read_pid_file, redis_servers_in, start_time, write_pid_file
from routing.model import Problem
from tests.integration.conftest import REPO, add_user, listening_port, log_size
from tests.integration.test_api_day import at


def children(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(pid: int, start: int | None) -> bool:
    """Return True if the process (pid and start time) no longer runs."""
    now = start_time(pid)
    return now is None or now != start


def wait_until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    msg = f"timed out after {timeout_s} s waiting for {what}"
    raise AssertionError(msg)


@dataclass
class Serve:
    """`courier serve` in a subprocess with a data directory; killable and restartable."""

    data: Path
    network: Path
    log: Path
    port: int = 0  # the kernel's choice at each start (see ``listening_port``)
    proc: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        return env | {
            "COURIER_DATA_DIR": str(self.data),
            "COURIER_NETWORK": str(self.network),
            "COURIER_LOG_LEVEL": "INFO",
            "COURIER_SOLVE_WORKERS": "1",
        }

    def start(self) -> Serve:
        start = log_size(self.log)
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--port", "0"],
                env=self.env,
                cwd=REPO,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        self.port = listening_port(self.proc, self.log, start, 60)

        def ready() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "serve to answer /readyz")
        wait_until(lambda: self.worker_pid(), 30, "the solve worker's pid file")
        return self

    def worker_pid(self) -> int | None:
        record = read_pid_file(self.data / "run" / "worker-0.pid")
        return record.pid if record is not None and record.alive() else None

    def redis_pid(self) -> int:
        record = read_pid_file(self.data / "run" / "redis-server.pid")
        assert record is not None
        return record.pid

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve(
    tmp_path: Path, network_path: Path, town_files: dict[str, Path], town: Problem
) -> Iterator[Serve]:
    """`courier serve` on a fresh data directory with the town day uploaded and users made."""
    s = Serve(tmp_path / "data", network_path, tmp_path / "serve.log")
    settings = Settings(data_dir=s.data)
    s.data.mkdir()
    upgrade_database(settings.sqlalchemy_url)
    s.tokens["dispatcher"] = add_user(settings, "dispatcher", Role.dispatcher)
    s.start()
    try:
        with s.client() as c:
            for kind in ("depots", "couriers", "jobs"):
                params = {"day": str(town.day)} if kind == "jobs" else {}
                files = {"file": (f"{kind}.csv", town_files[kind].read_bytes(), "text/csv")}
                r = c.post(f"/{kind}", headers=s.h("dispatcher"), params=params, files=files)
                assert r.status_code == 201, r.text
        s.tokens["C01"] = add_user(settings, "c01", Role.courier, "C01")
        yield s
    finally:
        s.stop()


def post_plan(s: Serve, town: Problem, time_limit_s: float) -> int:
    with s.client() as c:
        r = c.post(
            "/plans",
            headers=s.h("dispatcher"),
            json={"day": str(town.day), "time_limit_s": time_limit_s},
        )
    assert r.status_code == 202, r.text
    return int(r.json()["plan_id"])


def status(s: Serve, plan_id: int) -> dict[str, Any]:
    with s.client() as c:
        body: dict[str, Any] = c.get(f"/plans/{plan_id}/status", headers=s.h("dispatcher")).json()
    return body


def wait_status(
    s: Serve, plan_id: int, wanted: tuple[str, ...], timeout_s: float
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        st = status(s, plan_id)
        return st if st["status"] in wanted else None

    try:
        result: dict[str, Any] = wait_until(check, timeout_s, f"plan {plan_id} {wanted}")
    except AssertionError as e:
        raise AssertionError(f"{e}: {status(s, plan_id)}\n{s.log.read_text()[-3000:]}") from e
    return result


def assert_ready(s: Serve, plan_id: int) -> None:
    """Wait for the plan to end; fail with its error and the log's tail unless it is ready."""
    st = wait_status(s, plan_id, ("ready", "failed"), 60)
    assert st["status"] == "ready", f"{st}\n{s.log.read_text()[-4000:]}"


def kill_worker_mid_solve(
    s: Serve, plan_id: int, attempt: int, *, horse_only: bool = False
) -> list[tuple[int, int | None]]:
    """Wait until the plan's attempt is solving, then SIGKILL the worker and its work horse.

    With ``horse_only`` the worker lives on and only its work horse is killed.
    """
    seen: list[tuple[str, Any]] = []

    def solving() -> bool:
        st = status(s, plan_id)
        now = (st["status"], st["progress"].get("attempt", 1))
        if not seen or seen[-1] != now:
            seen.append(now)
        return now == ("solving", attempt)

    try:
        wait_until(solving, 60, f"plan {plan_id} attempt {attempt} solving")
    except AssertionError as e:
        raise AssertionError(
            f"{e}; statuses seen {seen}; now {status(s, plan_id)}\n{s.log.read_text()[-3000:]}"
        ) from e
    # a re-queued plan shows its next attempt before the restarted worker has written its pid
    worker = wait_until(s.worker_pid, 30, "a live solve worker")
    horses = wait_until(lambda: children(worker), 10, "the work horse")
    victims = [(p, start_time(p)) for p in ([] if horse_only else [worker]) + horses]
    for pid, _ in victims:
        os.kill(pid, signal.SIGKILL)
    return victims


def test_a_killed_worker_is_restarted_and_its_plan_requeued_once_then_failed(
    serve: Serve, town: Problem
) -> None:
    """SIGKILL worker + horse mid-solve: the plan is re-queued and solves; killed twice, it fails with a message.

    serve restarts the dead worker (a log line names it); the next plan solves.
    """
    s = serve
    first = post_plan(s, town, 3)
    victims = kill_worker_mid_solve(s, first, attempt=1)
    t_kill = time.monotonic()
    requeued = wait_until(
        lambda: status(s, first)["progress"].get("attempt") == 2, 30, "re-queue of plan"
    )
    detect_s = time.monotonic() - t_kill
    assert requeued
    assert_ready(s, first)
    assert all(gone(p, st) for p, st in victims)
    log = s.log.read_text()
    assert f"solve worker 0 (pid {victims[0][0]}) exited with signal 9" in log
    lost = f"plan {first} lost its solve worker (attempt 1 of 2: its holder "
    assert re.search(re.escape(lost) + r".*is gone\); queued again", log), log[-3000:]

    second = post_plan(s, town, 3)
    kill_worker_mid_solve(s, second, attempt=1)
    kill_worker_mid_solve(s, second, attempt=2)
    t_kill = time.monotonic()
    failed = wait_status(s, second, ("ready", "failed"), 60)
    fail_s = time.monotonic() - t_kill
    assert failed["status"] == "failed"
    assert "solve worker stopped during each of 2 attempts" in failed["error"]

    third = post_plan(s, town, 1)
    assert_ready(s, third)
    print(f"re-queued {detect_s:.1f} s after the kill; failed {fail_s:.1f} s after the second")


def test_a_work_horse_killed_under_its_worker_has_its_plan_requeued_at_once(
    serve: Serve, town: Problem
) -> None:
    """SIGKILL the work horse alone (as the kernel's out-of-memory killer would): its worker re-queues the plan, logs how the horse died, and solves it."""
    s = serve
    plan_id = post_plan(s, town, 3)
    worker = s.worker_pid()
    (horse,) = kill_worker_mid_solve(s, plan_id, attempt=1, horse_only=True)
    assert_ready(s, plan_id)
    assert s.worker_pid() == worker  # the worker lived on; no restart was needed
    assert gone(*horse)
    log = s.log.read_text()
    # the worker or a status read (whichever saw the horse gone first) queued the plan again
    assert f"plan {plan_id}: work horse {horse[0]} died (killed by signal 9); " in log
    assert re.search(rf"plan {plan_id} lost its solve worker \(attempt 1 of 2: .*queued again", log)


def test_a_killed_serve_leaves_nothing_and_a_restart_finds_its_work(
    serve: Serve, town: Problem
) -> None:
    """SIGKILL serve: its redis-server, worker and horse die; a restart stops any leftover first.

    After the restart exactly one redis-server works in the data directory, no earlier worker
    runs, the plan queued before the kill solves and every acknowledged stop event is stored.
    """
    s = serve
    plan_id = post_plan(s, town, 1)
    assert_ready(s, plan_id)
    acked: list[str] = []
    with s.client() as c:
        assert c.post(f"/plans/{plan_id}/publish", headers=s.h("dispatcher")).status_code == 200
        stops = c.get("/rounds/me", headers=s.h("C01"), params={"day": str(town.day)}).json()
        for k, st in enumerate(stops["stops"][:3]):
            body = {
                "idempotency_key": uuid.uuid4().hex,
                "job_id": st["job_id"],
                "kind": "arrived",
                "device_ts": at(town, 30000 + 60 * k),
            }
            r = c.post("/rounds/me/events", headers=s.h("C01"), json=body)
            assert r.status_code == 201, r.text
            acked.append(body["idempotency_key"])
    queued = post_plan(s, town, 2)
    worker = s.worker_pid()
    assert worker is not None
    before = [(p, start_time(p)) for p in (s.redis_pid(), worker)]
    horses = [(p, start_time(p)) for p in children(worker)]
    assert s.proc is not None
    s.proc.kill()
    s.proc.wait()
    t_kill = time.monotonic()
    wait_until(lambda: all(gone(p, st) for p, st in before + horses), 15, "serve's children to die")
    died_s = time.monotonic() - t_kill
    assert redis_servers_in(s.data / "redis") == []

    # What a serve killed where the kernel does not stop children would leave: its redis-server
    # on the same append-only file and a worker, both recorded in their pid files.
    run = s.data / "run"
    left_redis = EmbeddedRedis(s.data / "redis", pid_file=run / "redis-server.pid").start()
    left_worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env=s.env | {"REDIS_URL": left_redis.url},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    write_pid_file(run / "worker-0.pid", left_worker.pid, "worker")
    assert left_redis.process is not None
    leftovers = [(p, start_time(p)) for p in (left_redis.process.pid, left_worker.pid)]
    try:
        s.start()
        assert left_worker.wait(5) is not None
        assert left_redis.process.wait(5) is not None
        assert all(gone(p, st) for p, st in leftovers)
        assert redis_servers_in(s.data / "redis") == [s.redis_pid()]
        assert s.worker_pid() not in (None, worker, left_worker.pid)
        assert_ready(s, queued)
        with s.client() as c:
            events = c.get("/events", headers=s.h("dispatcher"), params={"plan_id": plan_id})
        stored = {e["idempotency_key"] for e in events.json()["data"]}
        assert set(acked) <= stored
    finally:
        left_worker.kill()
        left_worker.wait()
        left_redis.stop()
    print(f"serve's children gone {died_s:.1f} s after its SIGKILL")


def test_serve_refuses_a_data_directory_in_use(serve: Serve) -> None:
    """A second serve on the same data directory exits with an error and starts no redis-server."""
    second = Serve(serve.data, serve.network, serve.log.with_name("second.log"))
    with second.log.open("wb") as fh:
        out = subprocess.run(
            [sys.executable, "-m", "api.cli", "serve", "--port", "0"],
            env=second.env,
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
    assert out.returncode == 2
    assert "uses the data directory" in second.log.read_text()
    assert redis_servers_in(serve.data / "redis") == [serve.redis_pid()]
    assert redis.Redis.from_url(f"redis://127.0.0.1:{_redis_port(serve)}").ping()


def _redis_port(s: Serve) -> int:
    text = s.log.read_text()
    return int(text.split("embedded Redis at redis://127.0.0.1:")[-1].split("/")[0])
