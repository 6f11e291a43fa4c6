"""Logging setup, done once by the CLI: text or JSON lines on standard error."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote

_EXTRA_FIELDS = ("request_id", "user", "method", "path", "status", "duration_ms", "remote")


_second: tuple[int, str] = (-1, "")


def _iso_utc(created: float) -> str:
    """`2026-01-02T03:04:05.678+00:00`, the seconds part formatted once per second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id:
            line += f" rid={request_id} user={getattr(record, 'user', None) or '-'}"
        return line


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Standard error without a system call per line: INFO lines (the access log) are
    flushed by a daemon thread every `interval` seconds, WARNING and above at once, and
    everything at exit (logging.shutdown calls flush)."""

    def __init__(self, interval: float = 0.2) -> None:
        stream = io.TextIOWrapper(
            sys.stderr.buffer, encoding="utf-8", errors="backslashreplace", line_buffering=False
        )
        super().__init__(stream)
        self._interval = interval
        threading.Thread(target=self._flusher, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            with self.lock:  # type: ignore[union-attr]
                self.stream.write(line)
                if record.levelno >= logging.WARNING:
                    self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _flusher(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()


def _stderr_handler() -> logging.Handler:
    if hasattr(sys.stderr, "buffer"):
        return BufferedStderrHandler()
    return logging.StreamHandler(sys.stderr)  # stderr replaced by a text-only object


# The access line's fast path: one line per request is the logging hot spot, so when the
# handler configure() installed is the only one, the line is formatted here, exactly as
# the formatter would, and written without a LogRecord. Anything else (tests capturing
# logs, another handler) takes the ordinary logging path.
_fast: tuple[BufferedStderrHandler, bool] | None = None
_local_second: tuple[int, str] = (-1, "")


def _asctime(created: float) -> str:
    global _local_second
    whole = int(created)
    if _local_second[0] != whole:
        _local_second = (whole, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)))
    return f"{_local_second[1]},{int((created - whole) * 1000):03d}"


def access_line(logger: logging.Logger, message: str, fields: dict[str, object]) -> bool:
    """Write `message` with `fields` for `logger` at INFO; False if the caller must log it
    through logging instead (the fast path does not apply)."""
    fast = _fast
    handlers = logging.root.handlers
    if fast is None or len(handlers) != 1 or handlers[0] is not fast[0] or logger.handlers:
        return False
    handler, as_json = fast
    now = time.time()
    if as_json:
        entry: dict[str, object] = {
            "time": _iso_utc(now),
            "level": "INFO",
            "logger": logger.name,
            "message": message,
        }
        entry.update(fields)
        line = json.dumps(entry, default=str)
    else:
        line = f"{_asctime(now)} INFO {logger.name}: {message}"
        if fields.get("request_id"):
            line += f" rid={fields['request_id']} user={fields.get('user') or '-'}"
    with handler.lock:  # type: ignore[union-attr]
        handler.stream.write(line + "\n")
    return True


def _json_value(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def request_line(
    logger: logging.Logger,
    method: str,
    path: str,
    status: int,
    elapsed: float,
    request_id: str,
    user: str | None,
    remote: str | None,
) -> bool:
    """The access line of one request, as `access_line` would write it with these fields,
    formatted by one f-string (no dict, no JSON encoder object); False if the caller must
    log it through logging instead."""
    fast = _fast
    handlers = logging.root.handlers
    if fast is None or len(handlers) != 1 or handlers[0] is not fast[0] or logger.handlers:
        return False
    handler, as_json = fast
    now = time.time()
    ms = elapsed * 1000
    if as_json:  # the keys and spacing of json.dumps(entry) in access_line
        # the usual methods need no escaping; the path is escaped once, for both
        # "message" and "path"
        qmethod = _METHODS.get(method) or _quote(method)
        qpath = _quote(path)
        name = _QUOTED.get(logger.name) or _QUOTED.setdefault(logger.name, _quote(logger.name))
        line = (
            f'{{"time": "{_iso_utc(now)}", "level": "INFO", "logger": {name},'
            f' "message": "{qmethod[1:-1]} {qpath[1:-1]} {status} {ms:.1f}ms",'
            f' "request_id": {_quote(request_id)}, "user": {_json_value(user)},'
            f' "method": {qmethod}, "path": {qpath}, "status": {status},'
            f' "duration_ms": {round(ms, 2)!r}, "remote": {_json_value(remote)}}}\n'
        )
    else:
        line = f"{_asctime(now)} INFO {logger.name}: {method} {path} {status} {ms:.1f}ms"
        if request_id:
            line += f" rid={request_id} user={user or '-'}"
        line += "\n"
    with handler.lock:  # type: ignore[union-attr]
        handler.stream.write(line)
    return True


_QUOTED: dict[str, str] = {}
_METHODS = {m: f'"{m}"' for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}


def configure(level: str = "INFO", fmt: str = "text") -> None:
    global _fast
    handler = _stderr_handler()
    _fast = (handler, fmt == "json") if isinstance(handler, BufferedStderrHandler) else None
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Every request writes an access line: skip record fields nobody prints (each costs a
    # system call or a lookup per record).
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
