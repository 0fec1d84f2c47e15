"""The provider's logs: one JSON object a line on standard error; every line written while a
request is answered carries its request id — the ``X-Request-Id`` it came with when that is
well-formed, else one made here — which the answer echoes.

A line never holds a secret: services log events, not values; SQLAlchemy's errors leave their
parameters out (``hide_parameters``); the access log (``TESSERA_ACCESS_LOG``) shows a path without
its query, where a logout's ``id_token_hint`` or an authorization request's ``state`` travels.

>>> import logging
>>> record = logging.LogRecord("tessera.idp", logging.INFO, __file__, 1, "purged %s", (3,), None)
>>> line = JsonFormatter().format(record)
>>> sorted(orjson.loads(line)), orjson.loads(line)["message"]
(['level', 'logger', 'message', 'time'], 'purged 3')
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)
HEADER = b"x-request-id"
# What an upstream proxy's id may be; anything else is replaced, never echoed or logged.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_ACCESS_FIELDS = 5  # uvicorn's access record: client, method, path, HTTP version, status


class JsonFormatter(logging.Formatter):
    """One record, one JSON object: time (UTC), level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        args = record.args
        if (
            record.name == "uvicorn.access"
            and isinstance(args, tuple)
            and len(args) == _ACCESS_FIELDS
        ):
            client, method, path, _version, status = args
            path_only = str(path).split("?", 1)[0]
            entry["message"] = f"{method} {path_only} {status}"
            entry.update(method=method, path=path_only, status=status, client=client)
        else:
            entry["message"] = record.getMessage()
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def log_config(level: str = "info") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of ``tessera serve`` (uvicorn's loggers and ours).

    >>> sorted(log_config()["loggers"])
    ['tessera', 'uvicorn', 'uvicorn.access', 'uvicorn.error']
    """
    handler = {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: dict(handler)
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "tessera")
        },
    }


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The id of a request with these headers: its ``X-Request-Id`` when well-formed, else a
    new one. :class:`.http.edge.Edge` sets it in :data:`REQUEST_ID` and echoes it.

    >>> request_id([(b"x-request-id", b"abc-123")])
    'abc-123'
    >>> len(request_id([(b"x-request-id", b"<script>")]))
    32
    """
    given = next((value for name, value in headers if name == HEADER), None)
    return given.decode() if given and _WELL_FORMED.fullmatch(given) else os.urandom(16).hex()
