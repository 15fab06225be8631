"""Logs a machine can read: every line the process writes is one JSON object.

Fields of every line (README, "Logs"):

* ``ts``: UTC time, ISO 8601 with milliseconds (``2026-12-07T14:35:04.123Z``);
* ``level``: ``debug``, ``info``, ``warning``, ``error``, ``critical``;
* ``logger``: the Python logger's name (``gateway...``, ``uvicorn.error``, ``py.warnings``);
* ``msg``: the message, formatted;
* ``request_id``, and ``trace_id`` when tracing is on: on every line logged
  while a request is handled (bound per request by :func:`bind_request`, a
  context variable, so concurrent requests never mix);
* ``exc``: the traceback, when an exception is logged.

The access line (logger ``gateway.access``, one per request, on stdout) adds
its own fields at the top level (``event: request``, ``status``, ``rule``...,
see :func:`gateway.observability.record.finish`); every other line goes to
stderr. Python warnings and uncaught exceptions are logged the same way, and
uvicorn's loggers propagate here (uvicorn is started without its own log config).
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import orjson

#: (request id, trace id) of the request being handled in this context
_REQUEST: ContextVar[tuple[str, str | None] | None] = ContextVar("gateway_request", default=None)


def bind_request(request_id: str, trace_id: str | None) -> None:
    """Tag every line logged from here on in this context (one request's task)."""
    _REQUEST.set((request_id, trace_id))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        bound = _REQUEST.get()
        if bound is not None:
            line["request_id"] = bound[0]
            if bound[1] is not None:
                line["trace_id"] = bound[1]
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str) -> None:
    """JSON lines for the whole process: the access line on stdout, the rest on stderr."""
    formatter = JsonFormatter()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    errors = logging.StreamHandler(sys.stderr)
    errors.setFormatter(formatter)
    root.addHandler(errors)
    root.setLevel(level.upper())
    access = logging.getLogger("gateway.access")
    for handler in list(access.handlers):
        access.removeHandler(handler)
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(formatter)
    access.addHandler(out)
    access.propagate = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("gateway").critical("uncaught exception", exc_info=(kind, exc, tb))
