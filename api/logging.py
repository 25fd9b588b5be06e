"""Logging set-up for the API, the worker and the CLI: one format, a request id on every line."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


_TOKEN = re.compile(r"(token=|Bearer\s+)[A-Za-z0-9_\-.]+")


class _RequestIdFilter(logging.Filter):
    """Add the request id to each record and redact bearer tokens (``?token=`` of WebSockets)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        message = record.getMessage()
        if "token=" in message or "Bearer" in message:
            record.msg, record.args = _TOKEN.sub(r"\1***", message), None
        return True


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line (time, level, logger, message, request id)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line of a record."""
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Configure the root logger once: stderr, with the request id in every line.

    Parameters
    ----------
    level
        Root level name (``"INFO"``, ``"DEBUG"``...).
    json_lines
        Emit JSON lines instead of plain text.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._courier = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root.addHandler(handler)
    root.setLevel(level.upper())
