"""The limiter seam and its policies, without aiohttp: memory backend, Redis backend (when
APP_TEST_REDIS_URL is set), fail-open for general limits, fallback for failed logins."""

from __future__ import annotations

import os
import uuid

import pytest

from app.ratelimit import Decision, LoginGuard, MemoryLimiter, RateLimits
from app.ratelimit.policy import BackendHealth
from app.ratelimit.redis import RedisLimiter
from tests.helpers import make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_window_counts_and_resets() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    first = await limiter.hit("k", 3, 60)
    assert (first.allowed, first.used, first.remaining, first.reset) == (True, 1, 2, clock.now + 60)
    await limiter.hit("k", 3, 60)
    third = await limiter.hit("k", 3, 60)
    assert third.allowed and third.remaining == 0
    fourth = await limiter.hit("k", 3, 60)
    assert not fourth.allowed and fourth.retry_after(clock.now) == 60
    clock.now += 60
    again = await limiter.hit("k", 3, 60)
    assert again.allowed and again.used == 1


async def test_memory_keys_are_independent_and_bounded() -> None:
    clock = Clock()
    limiter = MemoryLimiter(max_keys=100, clock=clock)
    for index in range(1000):
        await limiter.hit(f"addr:{index}", 1, 60)
    assert len(limiter) <= 100
    assert (await limiter.hit("addr:fresh", 1, 60)).allowed


def test_headers_are_githubs() -> None:
    decision = Decision(allowed=True, limit=5000, used=12, reset=1700000000.2)
    assert decision.headers() == {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "4988",
        "X-RateLimit-Reset": "1700000001",
        "X-RateLimit-Used": "12",
        "X-RateLimit-Resource": "core",
    }


async def test_policy_per_user_and_per_address(tmp_path: object) -> None:
    settings = make_settings(tmp_path, rate_limit="3/hour", rate_limit_anonymous="2/hour")  # type: ignore[arg-type]
    limits = RateLimits(settings, MemoryLimiter(), BackendHealth())
    for _ in range(2):
        assert (await limits.check(user_id=None, address="10.0.0.1")).allowed  # type: ignore[union-attr]
    assert not (await limits.check(user_id=None, address="10.0.0.1")).allowed  # type: ignore[union-attr]
    # The same address, authenticated: its own budget, the user's.
    decision = await limits.check(user_id=7, address="10.0.0.1")
    assert decision is not None and decision.allowed and decision.limit == 3
    # Another address is untouched.
    assert (await limits.check(user_id=None, address="10.0.0.2")).allowed  # type: ignore[union-attr]


async def test_policy_fails_open_when_redis_is_down(tmp_path: object) -> None:
    settings = make_settings(tmp_path)  # type: ignore[arg-type]
    errors: list[int] = []
    health = BackendHealth(on_error=lambda: errors.append(1))
    down = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens on port 1
    limits = RateLimits(settings, down, health)
    try:
        assert await limits.check(user_id=1, address="x") is None
    finally:
        await down.close()
    assert errors == [1] and health.degraded


async def test_failed_logins_block_the_address_not_other_addresses() -> None:
    guard = LoginGuard(3, 60)
    for _ in range(3):
        assert await guard.retry_after("10.0.0.1", "alice") is None
        await guard.failed("10.0.0.1", "alice")
    wait = await guard.retry_after("10.0.0.1", "alice")
    assert wait is not None and 1 <= wait <= 60
    # Any account from that address is refused...
    assert await guard.retry_after("10.0.0.1", "bob") is not None
    # ...and alice herself, from another address, is not.
    assert await guard.retry_after("10.0.0.9", "alice") is None


async def test_distributed_guessing_gets_one_try_per_address() -> None:
    guard = LoginGuard(3, 60)
    for index in range(3):  # three addresses, one failure each: the account is hot
        await guard.failed(f"10.1.0.{index}", "alice")
    # An address that already failed on alice is refused for alice (not for others)...
    assert await guard.retry_after("10.1.0.0", "alice") is not None
    assert await guard.retry_after("10.1.0.0", "bob") is None
    # ...a fresh address (the owner) still gets through to the password check.
    assert await guard.retry_after("192.168.1.5", "alice") is None
    # Logins are compared case-insensitively.
    assert await guard.retry_after("10.1.0.1", "ALICE") is not None


async def test_failed_logins_fall_back_to_memory_when_redis_is_down() -> None:
    down = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.2)
    health = BackendHealth()
    guard = LoginGuard(2, 60, down, health)
    try:
        for _ in range(2):
            await guard.failed("10.0.0.1", "alice")
        assert await guard.retry_after("10.0.0.1", "alice") is not None
    finally:
        await down.close()
    assert health.errors > 0


REDIS_URL = os.environ.get("APP_TEST_REDIS_URL")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="APP_TEST_REDIS_URL is not set")
async def test_redis_backend_shares_counters_between_instances() -> None:
    assert REDIS_URL is not None
    prefix = f"test:{uuid.uuid4().hex}:"
    one, two = RedisLimiter(REDIS_URL, prefix=prefix), RedisLimiter(REDIS_URL, prefix=prefix)
    try:
        assert (await one.hit("k", 2, 60)).used == 1
        assert (await two.hit("k", 2, 60)).used == 2
        third = await one.hit("k", 2, 60)
        assert not third.allowed and 0 < third.retry_after(third.reset - 60) <= 60
        peek = await two.peek("k", 2, 60)
        assert peek.used == 3 and not peek.allowed
        await one.reset("k")
        assert (await two.peek("k", 2, 60)).used == 0
    finally:
        await one.reset("k")
        await one.close()
        await two.close()
