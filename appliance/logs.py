"""Logging: JSON lines for fleets, readable text for people at a terminal.

Structured fields travel in `extra={"event": ..., ...}`; `log_event` is the shorthand.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any

from .redaction import RedactingFilter

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = _fields(record)
        payload["event"] = fields.pop("event", "log")
        payload.update(fields)
        payload["msg"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            line += "  " + " ".join(f"{k}={v}" for k, v in fields.items())
        return line


def setup_logging(fmt: str, level: str, *, websocket_frames: bool = False) -> None:
    """One handler on stdout. Every record passes the secret filter first, whoever logged it.

    At DEBUG, `websockets` would log every handshake header and every frame (transcripts, audio):
    it stays at INFO unless `websocket_frames` asks for them (and the filter still masks secrets).
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    debug = level == "DEBUG"
    # Third-party chatter stays at WARNING unless we debug.
    for noisy in ("openai", "openai.agents", "httpx", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("websockets").setLevel(
        logging.DEBUG if debug and websocket_frames else logging.INFO if debug else logging.WARNING
    )
    logging.captureWarnings(True)  # library warnings go through the filter too, not straight to stderr
    _log_uncaught_exceptions()


def _log_uncaught_exceptions() -> None:
    """Tracebacks that would go straight to stderr (a thread's, the main thread's) go through the
    log instead, so the secret filter sees them too."""
    crash = logging.getLogger("appliance.crash")

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        crash.error("uncaught exception in thread %s", name, exc_info=exc_info, extra={"event": "uncaught_exception"})

    def on_exception(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        crash.critical("uncaught exception", exc_info=(exc_type, exc, tb), extra={"event": "uncaught_exception"})

    threading.excepthook = on_thread_exception
    sys.excepthook = on_exception


def log_event(logger: logging.Logger, event: str, msg: str = "", *, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, msg or event, extra={"event": event, **fields})
