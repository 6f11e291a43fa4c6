"""Git admission control: global, per-repository and per-client bounds, a short FIFO
queue with a deadline, and quick 503s past it."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import Unavailable
from app.git.admission import Admission


def make(**kw: float) -> Admission:
    values: dict[str, float] = dict(
        max_total=2, max_per_repo=2, max_per_client=2, queue_size=1, queue_timeout=5
    )
    values.update(kw)
    return Admission(**values)  # type: ignore[arg-type]


async def test_bounded_with_a_queue_then_refused() -> None:
    admission = make()
    release = asyncio.Event()
    entered: list[str] = []

    async def work(name: str, repo: str, client: str) -> None:
        async with admission.slot(repo, client):
            entered.append(name)
            await release.wait()

    first = asyncio.create_task(work("a", "r1", "c1"))
    second = asyncio.create_task(work("b", "r2", "c2"))
    await asyncio.sleep(0)
    queued = asyncio.create_task(work("c", "r3", "c3"))
    await asyncio.sleep(0)
    assert admission.active == 2 and admission.queued == 1
    with pytest.raises(Unavailable) as refused:
        async with admission.slot("r4", "c4"):
            pass
    assert refused.value.retry_after >= 1
    release.set()
    await asyncio.gather(first, second, queued)
    assert entered == ["a", "b", "c"] and admission.active == 0 and admission.queued == 0


async def test_per_repository_bound_lets_other_repositories_pass() -> None:
    admission = make(max_total=4, max_per_repo=1, queue_size=2)
    hold = asyncio.Event()

    async def hold_slot() -> None:
        async with admission.slot("hot", "c1"):
            await hold.wait()

    holder = asyncio.create_task(hold_slot())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(hold_slot())
    await asyncio.sleep(0)
    assert admission.queued == 1
    async with admission.slot("cold", "c2"):  # another repository is not held up
        assert admission.active == 2
    hold.set()
    await asyncio.gather(holder, waiting)
    assert admission.active == 0


async def test_queue_deadline_gives_503() -> None:
    admission = make(max_total=1, queue_timeout=0.05)
    hold = asyncio.Event()

    async def holder() -> None:
        async with admission.slot("r", "c"):
            await hold.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    with pytest.raises(Unavailable):
        async with admission.slot("r2", "c2"):
            pass
    assert admission.queued == 0
    hold.set()
    await task


async def test_cancelled_waiter_gives_its_place_back() -> None:
    admission = make(max_total=1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with admission.slot("r", "c"):
            await hold.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    hold.set()
    await task
    assert admission.active == 0 and admission.queued == 0


async def test_closed_refuses_new_work() -> None:
    admission = make()
    admission.close()
    with pytest.raises(Unavailable):
        async with admission.slot("r", "c"):
            pass
