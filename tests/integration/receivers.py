"""Real local receivers for the notification tests: Zalo ZNS, an SMS gateway, webhooks, SMTP.

Each HTTP receiver is a small threaded HTTP server on a free port that records every request
(path, headers, body) and answers like the real service would; it can be stopped and started
again on the same port, so a sender meets a receiver that is down for a while.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from api.embedded import free_port


@dataclass
class Request:
    """One request a receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Request], tuple[int, dict[str, Any]]]


@dataclass
class Receiver:
    """An HTTP server on a port of the kernel's choice that records requests and answers with ``answer``."""

    answer: Answer
    port: int = 0  # the port it listens on, once started
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(n),
                )
                with receiver._lock:
                    receiver.requests.append(req)
                status, body = receiver.answer(req)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_GET = do_PUT = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def zalo_answer(no_zalo: set[str]) -> Answer:
    """Answer like Zalo's template API: error -118 for phones in ``no_zalo``, else a msg_id."""

    def answer(req: Request) -> tuple[int, dict[str, Any]]:
        body = req.json()
        if body["phone"] in no_zalo:
            return 200, {"error": -118, "message": "Zalo account not existed"}
        return 200, {
            "error": 0,
            "message": "Success",
            "data": {"msg_id": "zmsg-" + body["tracking_id"], "sent_time": str(int(time.time()))},
        }

    return answer


def ok_answer(req: Request) -> tuple[int, dict[str, Any]]:
    """Accept anything with an id."""
    return 200, {"id": f"r{len(req.body)}"}


class Mailbox:
    """An SMTP server (aiosmtpd) on a free port that keeps the messages it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                from email import message_from_bytes, policy

                mailbox.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
