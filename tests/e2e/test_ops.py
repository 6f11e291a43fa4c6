"""Operations and the middleware stack end to end: health, readiness, metrics, rate-limit
headers and refusals, failed-login limits, CORS, trusted proxies, body and header limits,
git admission control, request ids and structured logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.logs import JsonFormatter
from app.ratelimit.redis import RedisLimiter
from app.web.guards import LIMITS
from tests.helpers import PASSWORD, Server, basic, make_settings, start_server

API = "/api/v1"


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[Server] = []

    async def factory(**overrides: Any) -> Server:
        server = await start_server(make_settings(tmp_path / f"s{len(started)}", **overrides))
        started.append(server)
        await server.user("alice")
        return server

    yield factory
    for server in started:
        await server.test_server.close()


def session(source: str = "127.0.0.1") -> aiohttp.ClientSession:
    """A client whose connections come from `source` (any 127.x address is loopback)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def test_health_ready_and_metrics(make_server: Any) -> None:
    server = await make_server()
    async with session() as http:
        async with http.get(server.url + "/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with http.get(server.url + "/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200, body
            assert body == {
                "status": "ok",
                "checks": {"database": "ok", "git": "ok", "rate_limit": "ok"},
            }
        async with http.get(server.url + f"{API}/users/alice") as resp:
            assert resp.status == 200
        async with http.get(server.url + "/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
    assert (
        'githost_http_requests_total{method="GET",route="/api/v1/users/{username}",status="200"}'
        in text
    )
    assert "githost_http_request_duration_seconds_bucket" in text
    assert "githost_websocket_connections 0.0" in text
    assert "githost_git_active 0.0" in text


async def test_metrics_token_when_configured(make_server: Any) -> None:
    server = await make_server(metrics_token="m" * 32)
    async with session() as http:
        async with http.get(server.url + "/metrics") as resp:
            assert resp.status == 401
        headers = {"Authorization": "Bearer " + "m" * 32}
        async with http.get(server.url + "/metrics", headers=headers) as resp:
            assert resp.status == 200


async def test_readyz_reports_a_failing_redis_as_degraded(make_server: Any) -> None:
    server = await make_server()
    dead = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.2)
    server.app[LIMITS].limiter = dead
    try:
        async with session() as http:
            async with http.get(server.url + f"{API}/users/alice") as resp:
                assert resp.status == 200  # general limits fail open
                assert "X-RateLimit-Limit" not in resp.headers
            async with http.get(server.url + "/readyz") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["status"] == "degraded"
                assert body["checks"]["rate_limit"] == "degraded"
            async with http.get(server.url + "/metrics") as resp:
                assert "githost_ratelimit_backend_errors_total" in await resp.text()
    finally:
        await dead.close()


async def test_rate_limit_headers_and_429(make_server: Any) -> None:
    server = await make_server(rate_limit_anonymous="3/hour", rate_limit="5/hour")
    url = server.url + f"{API}/users/alice"
    async with session() as http:
        for expected_remaining in (2, 1, 0):
            async with http.get(url) as resp:
                assert resp.status == 200
                assert resp.headers["X-RateLimit-Limit"] == "3"
                assert resp.headers["X-RateLimit-Remaining"] == str(expected_remaining)
                assert resp.headers["X-RateLimit-Resource"] == "core"
                reset = int(resp.headers["X-RateLimit-Reset"])
                assert time.time() < reset <= time.time() + 3601
        async with http.get(url) as resp:
            assert resp.status == 429
            body = await resp.json()
            assert body["message"].startswith("API rate limit exceeded")
            assert body["request_id"] == resp.headers["X-Request-ID"]
            assert 1 <= int(resp.headers["Retry-After"]) <= 3600
            assert resp.headers["X-RateLimit-Remaining"] == "0"
        # The same address, authenticated: the user's own budget.
        async with http.get(url, headers=basic("alice", PASSWORD)) as resp:
            assert resp.status == 200 and resp.headers["X-RateLimit-Limit"] == "5"
        # Git and operations routes are not counted by the API limit.
        async with http.get(server.url + "/healthz") as resp:
            assert resp.status == 200 and "X-RateLimit-Limit" not in resp.headers


async def test_failed_logins_limited_per_address_not_per_account(make_server: Any) -> None:
    server = await make_server(auth_failure_limit="3/minute")
    url = server.url + f"{API}/user"
    async with session("127.0.0.1") as attacker, session("127.0.0.2") as owner:
        for _ in range(3):
            async with attacker.get(url, headers=basic("alice", "wrong")) as resp:
                assert resp.status == 401
        async with attacker.get(url, headers=basic("alice", "wrong")) as resp:
            assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["message"].startswith("API rate limit exceeded")
        # Even the right password is refused from that address (no oracle)...
        async with attacker.get(url, headers=basic("alice", PASSWORD)) as resp:
            assert resp.status == 429
        # ...but the owner, from another address, logs in.
        async with owner.get(url, headers=basic("alice", PASSWORD)) as resp:
            assert resp.status == 200 and (await resp.json())["login"] == "alice"
        body = {"username": "alice", "password": PASSWORD}
        async with owner.post(server.url + f"{API}/auth/token", json=body) as resp:
            assert resp.status == 200
        # The token endpoint counts too (and is refused for the blocked address).
        async with attacker.post(server.url + f"{API}/auth/token", json=body) as resp:
            assert resp.status == 429
        async with attacker.get(server.url + "/metrics") as resp:
            assert 'githost_ratelimit_refused_total{kind="login"}' in await resp.text()


async def test_git_challenge_is_never_a_failed_login(make_server: Any) -> None:
    server = await make_server(auth_failure_limit="2/minute")
    alice = await server.ctx.store.user_by_login("alice")
    assert alice is not None
    await server.repo(alice, "secret", private=True)
    refs = server.url + "/alice/secret.git/info/refs?service=git-upload-pack"
    async with session() as http:
        for _ in range(10):  # git's first, anonymous request: a 401 challenge each time
            async with http.get(refs) as resp:
                assert resp.status == 401 and "WWW-Authenticate" in resp.headers
        async with http.get(refs, headers=basic("alice", PASSWORD)) as resp:
            assert resp.status == 200


async def test_cors_closed_by_default(make_server: Any) -> None:
    server = await make_server()
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    async with session() as http:
        async with http.options(server.url + f"{API}/user", headers=headers) as resp:
            assert resp.status == 403
            assert "Access-Control-Allow-Origin" not in resp.headers
        async with http.get(server.url + f"{API}/users/alice", headers=headers) as resp:
            assert resp.status == 200
            assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_named_origin_with_credentials(make_server: Any) -> None:
    server = await make_server(cors_origins="https://app.example")
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }
    async with session() as http:
        async with http.options(server.url + f"{API}/user/repos", headers=preflight) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        get = {"Origin": "https://app.example"}
        async with http.get(server.url + f"{API}/users/alice", headers=get) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
            exposed = resp.headers["Access-Control-Expose-Headers"]
            assert "X-RateLimit-Remaining" in exposed and "X-Request-ID" in exposed
        other = {**preflight, "Origin": "https://evil.example"}
        async with http.options(server.url + f"{API}/user/repos", headers=other) as resp:
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_wildcard_never_with_credentials(make_server: Any) -> None:
    server = await make_server(cors_origins="*")
    async with session() as http:
        headers = {"Origin": "https://any.example"}
        async with http.get(server.url + f"{API}/users/alice", headers=headers) as resp:
            # aiohttp-cors answers a wildcard with the origin itself, never with credentials.
            assert resp.headers["Access-Control-Allow-Origin"] in ("*", "https://any.example")
            assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_forwarded_headers_only_from_trusted_proxies(make_server: Any) -> None:
    trusted = await make_server(trusted_proxies="127.0.0.0/8", rate_limit_anonymous="1/hour")
    untrusted = await make_server(rate_limit_anonymous="1/hour")
    forwarded = {
        "X-Forwarded-For": "198.51.100.7, 203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "git.example.com",
    }
    async with session() as http:
        async with http.get(trusted.url + f"{API}/users/alice", headers=forwarded) as resp:
            assert resp.status == 200
            assert (await resp.json())["url"] == "https://git.example.com/api/v1/users/alice"
        # Another client behind the proxy has its own anonymous budget...
        other = {**forwarded, "X-Forwarded-For": "203.0.113.10"}
        async with http.get(trusted.url + f"{API}/users/alice", headers=other) as resp:
            assert resp.status == 200
        async with http.get(trusted.url + f"{API}/users/alice", headers=other) as resp:
            assert resp.status == 429
        # ...while without a trusted proxy the headers are ignored: no spoofed budget,
        # no spoofed URLs.
        async with http.get(untrusted.url + f"{API}/users/alice", headers=forwarded) as resp:
            assert resp.status == 200
            assert (await resp.json())["url"].startswith(untrusted.url)
        async with http.get(untrusted.url + f"{API}/users/alice", headers=other) as resp:
            assert resp.status == 429


async def test_oversized_bodies_are_json_413(make_server: Any) -> None:
    server = await make_server(api_max_body_bytes=2048)
    url = server.url + f"{API}/user/repos"
    auth = basic("alice", PASSWORD)
    async with session() as http:
        body = json.dumps({"name": "x", "description": "d" * 5000})
        headers = {**auth, "Content-Type": "application/json"}
        async with http.post(url, data=body, headers=headers) as resp:
            assert resp.status == 413
            payload = await resp.json()
            assert "too large" in payload["message"] and payload["request_id"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            for _ in range(10):
                yield b" " * 1000

        async with http.post(url, data=chunks(), headers=headers) as resp:
            assert resp.status == 413
            assert "too large" in (await resp.json())["message"]


async def test_oversized_headers_are_refused(make_server: Any) -> None:
    server = await make_server()
    async with session() as http:
        headers = {"X-Big": "a" * 20000}
        async with http.get(server.url + "/healthz", headers=headers) as resp:
            assert 400 <= resp.status < 500
            assert "Traceback" not in await resp.text()


async def test_request_id_echoed_or_made(make_server: Any) -> None:
    server = await make_server()
    async with session() as http:
        async with http.get(server.url + "/healthz", headers={"X-Request-ID": "abc-123"}) as resp:
            assert resp.headers["X-Request-ID"] == "abc-123"
        made = set()
        for _ in range(3):  # an invalid id is replaced by a new one, unique per request
            async with http.get(
                server.url + "/nope/nope/nope", headers={"X-Request-ID": "a b"}
            ) as r:
                made.add(r.headers["X-Request-ID"])
        assert len(made) == 3
        assert all(re.fullmatch(r"[0-9a-f]{16}-[0-9]+", made_id) for made_id in made)
    # two processes (or restarts) never make the same ids: the prefix is random
    other = await make_server()
    async with session() as http, http.get(other.url + "/healthz") as r:
        assert r.headers["X-Request-ID"].split("-")[0] not in {m.split("-")[0] for m in made}


async def test_git_admission_refuses_past_the_queue(make_server: Any) -> None:
    server = await make_server(git_max_concurrency=1, git_queue_size=0)
    alice = await server.ctx.store.user_by_login("alice")
    assert alice is not None
    await server.repo(alice, "busy")
    host, port = server.test_server.host, server.test_server.port
    _reader, writer = await asyncio.open_connection(host, port)
    auth = basic("alice", PASSWORD)["Authorization"]
    writer.write(
        (
            "POST /alice/busy.git/git-receive-pack HTTP/1.1\r\n"
            f"Host: x\r\nAuthorization: {auth}\r\n"
            "Content-Type: application/x-git-receive-pack-request\r\n"
            "Transfer-Encoding: chunked\r\n\r\n4\r\n0000\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        for _ in range(200):  # until the held push has its slot
            if server.app[LIMITS] and _active(server) == 1:
                break
            await asyncio.sleep(0.02)
        assert _active(server) == 1
        async with session() as http:
            refs = server.url + "/alice/busy.git/info/refs?service=git-upload-pack"
            async with http.get(refs) as resp:
                assert resp.status == 503
                assert int(resp.headers["Retry-After"]) >= 1
                assert "busy" in await resp.text()
    finally:
        writer.close()
    for _ in range(200):
        if _active(server) == 0:
            break
        await asyncio.sleep(0.02)
    async with session() as http, http.get(refs) as resp:
        assert resp.status == 200


def _active(server: Server) -> int:
    from app.web.guards import ADMISSION

    return server.app[ADMISSION].active


def test_json_logs_carry_request_id_and_user() -> None:
    record = logging.LogRecord("app.access", logging.INFO, __file__, 1, "GET / 200", None, None)
    record.request_id = "rid-1"
    record.user = "alice"
    record.status = 200
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "rid-1" and entry["user"] == "alice" and entry["status"] == 200


REDIS_URL = os.environ.get("APP_TEST_REDIS_URL")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="APP_TEST_REDIS_URL is not set")
async def test_two_instances_share_limits_through_redis(make_server: Any) -> None:
    prefix = f"test{uuid.uuid4().hex[:12]}:"
    shared = {
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "rate_limit_anonymous": "3/hour",
        "auth_failure_limit": "2/minute",
    }
    one = await make_server(**shared)
    two = await make_server(**shared)
    async with session() as http:
        for server, remaining in ((one, "2"), (two, "1"), (one, "0")):
            async with http.get(server.url + f"{API}/users/alice") as resp:
                assert resp.status == 200
                assert resp.headers["X-RateLimit-Remaining"] == remaining
        async with http.get(two.url + f"{API}/users/alice") as resp:
            assert resp.status == 429
        # Failed logins too: two failures on one instance block the address on the other.
        for server in (one, two):
            async with http.get(server.url + f"{API}/user", headers=basic("alice", "no")) as r:
                assert r.status == 401
        async with http.get(one.url + f"{API}/user", headers=basic("alice", PASSWORD)) as r:
            assert r.status == 429
