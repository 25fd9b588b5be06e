"""Processes of ``courier serve``: they die with it, are found again after a crash, restart when they die.

``serve`` starts an embedded ``redis-server`` and solve workers. On Linux each child asks the
kernel for a signal when its parent dies (``PR_SET_PDEATHSIG`` through ``prctl``), so a killed
``serve`` takes them down. Each child is also recorded in a pid file in the data directory's
``run/`` folder with its start time (``/proc/<pid>/stat``), so a restarted ``serve`` finds what
its predecessor left, checks the pid still names that very process (not a recycled pid) and
stops it before starting anew: never two ``redis-server`` on one append-only file.
:class:`WorkerSupervisor` restarts a worker that dies, with a log line and a growing delay.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PROC = Path("/proc")


class SupervisorError(RuntimeError):
    """The data directory is in use by another ``courier serve``, or a leftover would not stop."""


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread exits (Linux only).

    Returns
    -------
    done
        False where ``prctl`` is unavailable (not Linux).
    """
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """Return a ``preexec_fn`` making the child receive ``sig`` when its parent dies.

    The parent may die between ``fork`` and ``prctl``; the child then finds itself re-parented
    and signals itself at once.
    """
    parent = os.getpid()

    def preexec() -> None:
        set_parent_death_signal(sig)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def start_time(pid: int) -> int | None:
    """Return a process's start time in clock ticks since boot, or None if there is no such pid.

    Together with the pid it names one process for good: a recycled pid has another start time.
    """
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has finished; only its parent's wait is missing
        return None
    return int(fields[19])


def cmdline(pid: int) -> list[str]:
    """Return a process's command line (as the process presents it), or [] if it is gone."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def cwd(pid: int) -> Path | None:
    """Return a process's working directory, or None if unreadable."""
    try:
        return Path(os.readlink(PROC / str(pid) / "cwd"))
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """What a pid file says: the pid, its start time, its role and the directory it works in."""

    pid: int
    start: int | None
    role: str
    directory: str = ""

    def alive(self) -> bool:
        """Return True if the very process recorded still runs (same pid, same start time)."""
        now = start_time(self.pid)
        return now is not None and (self.start is None or now == self.start)

    def matches(self) -> bool:
        """Return True if the running process is the one recorded and still looks like its role.

        A ``redis-server`` rewrites its command line to ``redis-server host:port`` and works in its
        ``--dir``; a worker's command line names ``api.cli`` and its role (``worker``,
        ``notify-worker``).
        """
        if not self.alive():
            return False
        args = cmdline(self.pid)
        if self.role == "redis-server":
            here = cwd(self.pid)
            return bool(args) and "redis-server" in args[0] and str(here) == self.directory
        return any("api.cli" in a for a in args) and self.role in args


def write_pid_file(path: Path, pid: int, role: str, directory: Path | None = None) -> ProcessRecord:
    """Record a child process in ``path`` (written atomically)."""
    record = ProcessRecord(
        pid, start_time(pid), role, str(directory.resolve()) if directory else ""
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"pid": pid, "start": record.start, "role": role, "directory": record.directory})
    )
    tmp.replace(path)
    return record


def read_pid_file(path: Path) -> ProcessRecord | None:
    """Return the record in a pid file, or None if there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text())
        return ProcessRecord(
            int(data["pid"]), data.get("start"), str(data["role"]), str(data.get("directory", ""))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_pid(pid: int, *, timeout_s: float = 10.0) -> None:
    """Stop a process that is not our child: SIGTERM, then SIGKILL after ``timeout_s``."""
    first = start_time(pid)
    if first is None:
        return
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if start_time(pid) != first:
                return
            time.sleep(0.05)
    msg = f"process {pid} did not stop"
    raise SupervisorError(msg)


def redis_servers_in(directory: Path) -> list[int]:
    """Return the pids of ``redis-server`` processes working in ``directory`` (Linux only)."""
    target = str(directory.resolve())
    found: list[int] = []
    if not PROC.is_dir():
        return found
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        args = cmdline(pid)
        if args and "redis-server" in args[0] and str(cwd(pid)) == target:
            found.append(pid)
    return found


def stop_leftovers(run_dir: Path, redis_dir: Path | None = None) -> list[str]:
    """Stop what a previous ``serve`` on this data directory left running; return what was stopped.

    Every pid file in ``run_dir`` is checked (same pid and start time, same role) before its process
    is stopped; stale files are removed. With ``redis_dir``, any ``redis-server`` still working in
    it is stopped too, even without a pid file.
    """
    stopped: list[str] = []
    # Workers first, while their Redis still answers; then the redis-server.
    paths = sorted(run_dir.glob("*.pid"), key=lambda p: p.name.startswith("redis"))
    for path in paths if run_dir.is_dir() else []:
        record = read_pid_file(path)
        if record is not None and record.matches():
            logger.warning("stopping %s (pid %d) left by an earlier serve", record.role, record.pid)
            stop_pid(record.pid)
            stopped.append(f"{record.role} pid {record.pid}")
        path.unlink(missing_ok=True)
    if redis_dir is not None:
        for pid in redis_servers_in(redis_dir):
            logger.warning("stopping redis-server (pid %d) still working in %s", pid, redis_dir)
            stop_pid(pid)
            stopped.append(f"redis-server pid {pid}")
    return stopped


def lock_data_dir(run_dir: Path) -> IO[str]:
    """Take the data directory's lock for this process's lifetime (the kernel drops it at exit).

    Raises
    ------
    SupervisorError
        If another live ``courier serve`` holds it.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = (run_dir / "serve.lock").open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as e:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        fh.close()
        msg = f"another `courier serve` (pid {holder}) uses the data directory {run_dir.parent}"
        raise SupervisorError(msg) from e
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


@dataclass
class _Slot:
    """One worker slot: its process, when it started, how many quick deaths in a row."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


@dataclass
class WorkerSupervisor:
    """Keep ``count`` solve workers running; restart one that dies, with a growing delay.

    A thread owns the workers (Linux delivers the parent-death signal when the thread that
    started a child exits, so the same thread starts, restarts and stops them). Each worker has
    a pid file in ``run_dir``. ``tick`` callables run on every round of the loop (the plan
    reaper). A worker that lived ``stable_s`` is healthy again: the next death restarts at once.
    """

    argv: Sequence[str]
    env: dict[str, str]
    run_dir: Path
    count: int = 1
    interval_s: float = 0.5
    max_backoff_s: float = 30.0
    stable_s: float = 60.0
    ticks: list[Callable[[], object]] = field(default_factory=list)
    role: str = "worker"
    restarts: int = 0
    _slots: list[_Slot] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> WorkerSupervisor:
        """Start the workers and the supervising thread."""
        self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        return self

    def pids(self) -> list[int]:
        """Return the pids of the running workers."""
        return [s.process.pid for s in self._slots if s.process and s.process.poll() is None]

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the workers (SIGTERM, SIGKILL after ``timeout_s``) and the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s + 10)

    def _spawn(self, slot: _Slot) -> None:
        # The worker counts as running (pids()) once its pid file is written, not before.
        process = subprocess.Popen(
            list(self.argv), env=self.env, preexec_fn=die_with_parent(signal.SIGKILL)
        )
        slot.started = time.monotonic()
        write_pid_file(self.run_dir / f"{self.role}-{slot.index}.pid", process.pid, self.role)
        slot.process = process

    def _check(self, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.process is None:
            if now >= slot.restart_at:
                self._spawn(slot)
            return
        code = slot.process.poll()
        if code is None:
            return
        lived = now - slot.started
        slot.failures = 0 if lived >= self.stable_s else slot.failures + 1
        delay = 0.0 if slot.failures == 0 else min(self.max_backoff_s, 2.0 ** (slot.failures - 1))
        how = f"signal {-code}" if code < 0 else f"code {code}"
        logger.warning(
            "solve worker %d (pid %d) exited with %s after %.0f s; restarting in %.0f s",
            slot.index,
            slot.process.pid,
            how,
            lived,
            delay,
        )
        (self.run_dir / f"{self.role}-{slot.index}.pid").unlink(missing_ok=True)
        slot.process = None
        slot.restart_at = now + delay
        self.restarts += 1
        if delay == 0.0:
            self._spawn(slot)

    def _run(self) -> None:
        try:
            self._slots = [_Slot(i) for i in range(self.count)]
            for slot in self._slots:
                self._spawn(slot)
        finally:
            self._ready.set()
        while not self._stop.wait(self.interval_s):
            for slot in self._slots:
                try:
                    self._check(slot)
                except OSError:
                    logger.exception("could not restart solve worker %d", slot.index)
            for tick in self.ticks:
                try:
                    tick()
                except Exception:
                    logger.exception("supervisor task failed")
        self._terminate()

    def _terminate(self, timeout_s: float = 15.0) -> None:
        running = [s for s in self._slots if s.process is not None and s.process.poll() is None]
        for slot in running:
            assert slot.process is not None
            slot.process.terminate()
        for slot in running:
            assert slot.process is not None
            try:
                slot.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
        for slot in self._slots:
            (self.run_dir / f"{self.role}-{slot.index}.pid").unlink(missing_ok=True)
