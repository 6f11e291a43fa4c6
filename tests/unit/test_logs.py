"""The access log's batch formatting writes exactly what the logging formatters would."""

from __future__ import annotations

import json
import logging
import random

import pytest

from app import logs
from app.logs import JsonFormatter, TextFormatter

ROWS: list[logs.AccessFields] = [
    (
        1767323045.678,
        "app.access",
        "GET",
        "/api/v1/repos/a/b",
        200,
        0.0123456,
        "rid-1",
        None,
        "1.2.3.4",
    ),
    (1767323045.999, "app.access", "POST", '/api/v1/"quoted"\\back', 201, 1.5, "r2", "alice", None),
    (1767323046.0, "app.access", "BREW", "/ünï/cødé/\x01", 404, 0.0, "f" * 32, "bob", "::1"),
    (1767323046.0005, "app.access", "DELETE", "/x", 500, 12.3456789, "a:b.c-d_e", None, "-"),
]


def _record(row: logs.AccessFields) -> logging.LogRecord:
    now, name, method, path, status, elapsed, request_id, user, remote = row
    record = logging.LogRecord(
        name,
        logging.INFO,
        __file__,
        1,
        "%s %s %s %.1fms",
        (method, path, status, elapsed * 1000),
        None,
    )
    record.created = now
    record.msecs = int((now - int(now)) * 1000)
    fields = {
        "request_id": request_id,
        "user": user,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
        "remote": remote,
    }
    record.__dict__.update(fields)
    return record


@pytest.mark.parametrize("row", ROWS, ids=range(len(ROWS)))
def test_json_lines_match_the_json_formatter(row: logs.AccessFields) -> None:
    fast = logs._json_lines([row])
    slow = JsonFormatter().format(_record(row)) + "\n"
    assert fast.endswith("\n") and fast.count("\n") == 1
    # the same keys in the same order with the same values (duration_ms is "%.2f")
    assert list(json.loads(fast).items()) == list(json.loads(slow).items())
    assert fast.split('"duration_ms"')[0] == slow.split('"duration_ms"')[0]


def test_a_batch_is_its_lines_in_order() -> None:
    assert logs._json_lines(ROWS) == "".join(logs._json_lines([row]) for row in ROWS)
    assert logs._text_lines(ROWS) == "".join(logs._text_lines([row]) for row in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=range(len(ROWS)))
def test_text_lines_match_the_text_formatter(row: logs.AccessFields) -> None:
    assert logs._text_lines([row]) == TextFormatter().format(_record(row)) + "\n"


def test_two_decimal_durations_are_the_rounded_numbers() -> None:
    rng = random.Random(7)
    for _ in range(20000):
        ms = rng.choice((rng.random(), rng.random() * 1000, rng.random() * 1e6))
        assert float("%.2f" % ms) == round(ms, 2)  # noqa: UP031 (the formatting under test)


def test_cached_line_parts_stay_right_and_bounded() -> None:
    first = ROWS[0]
    again = (first[0] + 1.5, *first[1:5], 0.5, "other-id", "carol", "5.6.7.8")
    for row in (first, again, first):  # the second and third use the cached parts
        slow = JsonFormatter().format(_record(row)) + "\n"
        assert json.loads(logs._json_lines([row])) == json.loads(slow)
    many = [(*first[:3], f"/p/{i}", *first[4:]) for i in range(logs._JSON_PARTS_MAX + 10)]
    lines = logs._json_lines(many).splitlines()
    assert [json.loads(line)["path"] for line in lines] == [row[3] for row in many]
    assert len(logs._JSON_PARTS) <= logs._JSON_PARTS_MAX
