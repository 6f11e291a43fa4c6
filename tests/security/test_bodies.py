"""Oversized and malformed request bodies on the API: 400/413/422, never a 500, and
nothing created."""

from __future__ import annotations

import io

import pytest

from tests.helpers import PASSWORD, basic
from tests.security.conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="module")

BODIES: dict[str, bytes] = {
    "truncated": b'{"name": "x"',
    "array": b"[]",
    "string": b'"name"',
    "null": b"null",
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "deep-but-valid-size": b'{"name": "x", "extra": ' + b"[" * 40 + b"]" * 40 + b"}",
    "invalid-utf8": b'{"name": "\xff\xfe\xfd"}',
    "huge-number": b'{"name": 1e999999}',
    "nan": b'{"name": NaN}',
    "wrong-type": b'{"name": ["a", "b"], "private": "maybe"}',
    "nul-in-name": b'{"name": "x\\u0000y"}',
    "long-string": b'{"name": "' + b"a" * 500_000 + b'"}',
    "oversized": b'{"name": "x", "description": "' + b"d" * 2_000_000 + b'"}',
    "binary": bytes(range(256)) * 64,
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
async def test_bad_bodies_are_refused(shared: World, body: bytes) -> None:
    headers = {**basic("alice", PASSWORD), "Content-Type": "application/json"}
    reply = shared.safe(
        await shared.request("POST", "/api/v1/user/repos", data=io.BytesIO(body), headers=headers)
    )
    assert reply.status in (400, 413, 422), (reply.status, reply.text[:300])
    payload = reply.json()
    assert payload["message"] and payload["request_id"]
    assert await shared.server.ctx.store.repo_by_name("alice", "x") is None
    assert await shared.server.ctx.store.repo_by_name("alice", "a" * 100) is None
    await shared.intact()


async def test_declared_length_over_the_limit_is_refused_unread(shared: World) -> None:
    """A client announcing a huge body gets 413 at once, before sending it."""
    import asyncio

    host, port = shared.server.test_server.host, shared.server.test_server.port
    reader, writer = await asyncio.open_connection(host, port)
    auth = basic("alice", PASSWORD)["Authorization"]
    writer.write(
        (
            "POST /api/v1/user/repos HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000000000\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    assert b" 413 " in status_line
