"""Logging setup, done once by the CLI: text or JSON lines on standard error."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
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


# The access log is the logging hot spot (a line per request). When the handler
# configure() installed is the only one, app.web.requestlog hands over batches of lines
# as tuples of their fields, formatted here exactly as the formatter would, without a
# LogRecord each. Anything else (tests capturing logs, another handler) takes the
# ordinary logging path.
# (time, logger, method, path, status, elapsed seconds, request id, user, remote)
AccessFields = tuple[float, str, str, str, int, float, str, "str | None", "str | None"]


class BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Standard error without a system call per line: INFO lines (the access log) are
    flushed by a daemon thread every `interval` seconds, WARNING and above at once, and
    everything at exit (logging.shutdown calls flush)."""

    def __init__(self, interval: float = 0.2, as_json: bool = False) -> None:
        stream = io.TextIOWrapper(
            sys.stderr.buffer, encoding="utf-8", errors="backslashreplace", line_buffering=False
        )
        super().__init__(stream)
        self.as_json = as_json
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

    def write_access(self, lines: Iterable[AccessFields]) -> None:
        text = _json_lines(lines) if self.as_json else _text_lines(lines)
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(text)

    def _flusher(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()


def _stderr_handler(as_json: bool) -> logging.Handler:
    if hasattr(sys.stderr, "buffer"):
        return BufferedStderrHandler(as_json=as_json)
    return logging.StreamHandler(sys.stderr)  # stderr replaced by a text-only object


_fast: BufferedStderrHandler | None = None
_local_second: tuple[int, str] = (-1, "")


def _asctime(created: float) -> str:
    global _local_second
    whole = int(created)
    if _local_second[0] != whole:
        _local_second = (whole, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)))
    return f"{_local_second[1]},{int((created - whole) * 1000):03d}"


def write_access_lines(logger: logging.Logger, lines: Iterable[AccessFields]) -> bool:
    """Write these access lines for `logger` at INFO; False if the caller must log them
    through logging instead (the fast path does not apply)."""
    handler = _fast
    handlers = logging.root.handlers
    if handler is None or len(handlers) != 1 or handlers[0] is not handler or logger.handlers:
        return False
    handler.write_access(lines)
    return True


# JsonFormatter's keys and spacing for an access record (json.dumps of the same dict;
# duration_ms is written "%.2f", the same number as its round(ms, 2), at half the cost).
# What depends only on (logger, method, path, status) is quoted once and cached.
_JSON_LINE = '{"time": "%s.%03d%s%.1fms", "request_id": %s, "user": %s%s%.2f, "remote": %s}\n'
_JSON_PARTS: dict[tuple[str, str, str, int], tuple[str, str]] = {}
_JSON_PARTS_MAX = 4096


def _json_parts(name: str, method: str, path: str, status: int) -> tuple[str, str]:
    """The two fixed pieces of a line: from the time's offset to the message's duration,
    and from the user to duration_ms."""
    if len(_JSON_PARTS) >= _JSON_PARTS_MAX:  # paths are many: keep the cache bounded
        _JSON_PARTS.clear()
    qmethod, qpath = _quote(method), _quote(path)
    parts = _JSON_PARTS[name, method, path, status] = (
        f'+00:00", "level": "INFO", "logger": {_quote(name)},'
        f' "message": "{qmethod[1:-1]} {qpath[1:-1]} {status} ',
        f', "method": {qmethod}, "path": {qpath}, "status": {status}, "duration_ms": ',
    )
    return parts


def _json_lines(lines: Iterable[AccessFields]) -> str:
    """What JsonFormatter writes for these access records (the same keys, order and
    values: tests/unit/test_logs.py compares the two), in one loop for a whole batch."""
    out = []
    second, stamp = -1, ""
    parts = _JSON_PARTS
    for now, name, method, path, status, elapsed, request_id, user, remote in lines:
        whole = int(now)
        if whole != second:
            second, stamp = whole, _iso_utc(whole)[:19]
        ms = elapsed * 1000
        head, tail = parts.get((name, method, path, status)) or _json_parts(
            name, method, path, status
        )
        out.append(
            _JSON_LINE
            % (
                stamp,
                int((now - whole) * 1000),
                head,
                ms,
                _quote(request_id),
                "null" if user is None else _quote(user),
                tail,
                ms,
                "null" if remote is None else _quote(remote),
            )
        )
    return "".join(out)


def _text_lines(lines: Iterable[AccessFields]) -> str:
    """What TextFormatter writes for these access records."""
    out = []
    for now, name, method, path, status, elapsed, request_id, user, _ in lines:
        line = f"{_asctime(now)} INFO {name}: {method} {path} {status} {elapsed * 1000:.1f}ms"
        if request_id:
            line += f" rid={request_id} user={user or '-'}"
        out.append(line + "\n")
    return "".join(out)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    global _fast
    handler = _stderr_handler(as_json=fmt == "json")
    _fast = handler if isinstance(handler, BufferedStderrHandler) else None
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
