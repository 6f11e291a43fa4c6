"""Object reads through long-lived `git cat-file --batch-command` processes, pooled per repository.

A REST read (a file, a tree, thirty commits) asks a process that is already running
instead of starting one: the pool keeps up to `per_repo` readers per repository and
`max_processes` in all, closes readers idle longer than `idle_seconds`, and replaces a
reader that died. With `pooled=False` every checkout starts (and ends) its own process:
the naive design, kept as a setting so the benchmark can measure the difference.

Only object ids and validated ref expressions ever reach a reader (`check_name`): a
path request such as `HEAD:../x` makes git 2.39 exit (SECURITY-NOTES rule 5), and a
newline would smuggle a second command. Paths are resolved by walking trees instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from app.git.cache import ObjectCache
from app.git.names import SHA_RE
from app.git.process import GitConfig, GitError

log = logging.getLogger(__name__)

# An object name we are willing to send: no whitespace, no control characters, no `:`
# (path lookups), never an option. Refs are validated by app.git.names before this.
_NAME_RE = re.compile(r"^[^\x00-\x20\x7f:\\-][^\x00-\x20\x7f:\\]{0,1100}$")
_TIMEOUT = 30.0
CACHE_OBJECT_MAX = 256 * 1024  # objects up to this size are kept in the pool's cache


class ReaderDied(GitError):
    """The cat-file process exited or stopped answering; it is discarded."""

    def __init__(self, message: str):
        super().__init__(["cat-file", "--batch-command"], -1, message.encode())


class ObjectTooLarge(ValueError):
    """An object was bigger than the caller allowed (the reader is discarded)."""


class ObjectInfo(NamedTuple):
    sha: str
    type: str
    size: int


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"refusing to send object name {name[:60]!r} to cat-file")
    return name


class CatFile:
    """One `git cat-file --batch-command` process; one user at a time (the pool sees to it)."""

    def __init__(self, proc: asyncio.subprocess.Process, git_dir: Path):
        self.proc = proc
        self.git_dir = git_dir
        self.last_used = time.monotonic()
        self.broken = False
        self.cache: ObjectCache | None = None  # set by the pool at checkout
        self.cache_key: Hashable = None
        self._stderr = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def start(cls, git: GitConfig, git_dir: Path) -> CatFile:
        proc = await asyncio.create_subprocess_exec(
            git.git_bin,
            f"--git-dir={git_dir}",
            "cat-file",
            "--batch-command",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=git.env(),
            cwd=str(git.home),
            limit=1024 * 1024,
        )
        return cls(proc, git_dir)

    @property
    def alive(self) -> bool:
        return not self.broken and self.proc.returncode is None

    async def info(self, name: str) -> ObjectInfo | None:
        return (await self.info_many([name]))[0]

    async def info_many(self, names: Sequence[str]) -> list[ObjectInfo | None]:
        """`info` for many objects, pipelined (a writer task and the reader run together).

        Full object ids are answered from the cache when possible.
        """
        results: list[ObjectInfo | None] = [None] * len(names)
        pending = []
        for index, name in enumerate(names):
            check_name(name)
            hit = self._cached("info", name)
            if hit is None:
                obj = self._cached("obj", name)
                hit = obj[0] if isinstance(obj, tuple) else None
            if isinstance(hit, ObjectInfo):
                results[index] = hit
            else:
                pending.append(index)
        if not pending:
            return results
        lines = [f"info {names[i]}\n".encode() for i in pending]
        async with self._guard():
            writer = self._send(b"".join(lines))
            try:
                for index in pending:
                    info = results[index] = await self._header()
                    if info is not None and info.sha == names[index]:
                        self._keep("info", info.sha, info, 100)
            finally:
                await _finish(writer)
        return results

    async def read(self, name: str, max_size: int) -> tuple[ObjectInfo, bytes] | None:
        """A whole object of at most max_size bytes (check `info` first for big ones)."""
        return (await self.read_many([name], max_size))[0]

    async def read_many(
        self, names: Sequence[str], max_size: int
    ) -> list[tuple[ObjectInfo, bytes] | None]:
        """Several whole objects, pipelined. An object over max_size is an error."""
        results: list[tuple[ObjectInfo, bytes] | None] = [None] * len(names)
        pending = []
        for index, name in enumerate(names):
            check_name(name)
            hit = self._cached("obj", name)
            if isinstance(hit, tuple) and hit[0].size <= max_size:
                results[index] = hit
            else:
                pending.append(index)
        if not pending:
            return results
        lines = [f"contents {names[i]}\n".encode() for i in pending]
        async with self._guard():
            writer = self._send(b"".join(lines))
            try:
                for index in pending:
                    info = await self._header()
                    if info is None:
                        continue
                    if info.size > max_size:
                        self.broken = True  # the rest of this object is still in the pipe
                        raise ObjectTooLarge(f"object {info.sha} is {info.size} bytes")
                    data = (await self._stdout().readexactly(info.size + 1))[:-1]
                    results[index] = (info, data)
                    if info.sha == names[index] and info.size <= CACHE_OBJECT_MAX:
                        self._keep("obj", info.sha, (info, data), info.size)
            finally:
                await _finish(writer)
        return results

    def _cached(self, kind: str, name: str) -> object | None:
        if self.cache is None or not SHA_RE.match(name):
            return None
        return self.cache.get((self.cache_key, kind, name))

    def _keep(self, kind: str, sha: str, value: object, cost: int) -> None:
        if self.cache is not None:
            self.cache.put((self.cache_key, kind, sha), value, cost)

    async def close(self) -> None:
        self.broken = True
        if self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), 2.0)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(self.proc.wait())
        with contextlib.suppress(Exception):
            await asyncio.shield(self._stderr)

    # -- internals --

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Any failure in the middle of an exchange leaves the pipe out of step: discard."""
        if not self.alive:
            raise ReaderDied("reader is not usable")
        ok = False
        try:
            async with asyncio.timeout(_TIMEOUT):
                yield
            ok = True
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, BrokenPipeError) as e:
            self.broken = True
            raise ReaderDied(f"cat-file failed: {e!r}") from e
        finally:
            if not ok:
                self.broken = True
            self.last_used = time.monotonic()

    def _stdout(self) -> asyncio.StreamReader:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def _send(self, data: bytes) -> asyncio.Future[None] | None:
        """Queue commands: small batches go straight into the pipe's buffer; big ones are
        written by a task while the answers are read (both pipes could fill otherwise)."""
        if len(data) <= 8192:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            return None
        return asyncio.ensure_future(self._write(data))

    async def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def _header(self) -> ObjectInfo | None:
        line = await self._stdout().readline()
        if not line.endswith(b"\n"):
            self.broken = True
            raise ReaderDied("cat-file exited")
        parts = line.decode("utf-8", "replace").split()
        if len(parts) == 3 and parts[2].isdigit():
            return ObjectInfo(parts[0], parts[1], int(parts[2]))
        if parts and parts[-1] in ("missing", "ambiguous"):
            return None
        self.broken = True
        raise ReaderDied(f"unexpected cat-file answer {line[:100]!r}")

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            log.debug("cat-file %s: %s", self.git_dir.name, line.decode("utf-8", "replace").strip())


async def _finish(task: asyncio.Future[None] | None) -> None:
    if task is None:
        return
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError, BrokenPipeError):
        await task


@dataclass
class _Slot:
    idle: list[CatFile] = field(default_factory=list)
    count: int = 0


class ReaderPool:
    """Readers by repository key (use (repo id, path): a recreated repository is new)."""

    def __init__(
        self,
        git: GitConfig,
        *,
        max_processes: int = 64,
        per_repo: int = 8,
        idle_seconds: float = 60.0,
        pooled: bool = True,
        cache_bytes: int = 0,
    ):
        self.git = git
        self.cache = ObjectCache(cache_bytes)
        self.max_processes = max_processes
        self.per_repo = min(per_repo, max_processes)
        self.idle_seconds = idle_seconds
        self.pooled = pooled
        self.started = 0  # processes started, for tests and metrics
        self._slots: dict[Hashable, _Slot] = {}
        self._total = 0
        self._cond = asyncio.Condition()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def open_processes(self) -> int:
        return self._total

    async def start(self) -> None:
        if self.pooled and self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_idle())

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        async with self._cond:
            readers = [r for slot in self._slots.values() for r in slot.idle]
            for slot in self._slots.values():
                slot.count -= len(slot.idle)
                slot.idle.clear()
            self._total -= len(readers)
        await asyncio.gather(*(r.close() for r in readers))

    @contextlib.asynccontextmanager
    async def reader(self, key: Hashable, git_dir: Path) -> AsyncIterator[CatFile]:
        """Check a reader out for one request; it goes back to the pool if still in step."""
        if not self.pooled:
            self.started += 1
            cat = await CatFile.start(self.git, git_dir)
            cat.cache, cat.cache_key = self._cache(), key
            try:
                yield cat
            finally:
                await cat.close()
            return
        cat = await self._acquire(key, git_dir)
        cat.cache, cat.cache_key = self._cache(), key
        try:
            yield cat
        finally:
            await self._release(key, cat)

    def _cache(self) -> ObjectCache | None:
        return self.cache if self.cache.max_bytes > 0 else None

    async def _acquire(self, key: Hashable, git_dir: Path) -> CatFile:
        if self._closed:
            raise ReaderDied("reader pool is closed")
        to_close: list[CatFile] = []
        try:
            async with self._cond:
                while True:
                    slot = self._slots.setdefault(key, _Slot())
                    if slot.idle:
                        cat = slot.idle.pop()
                        if cat.alive:
                            return cat
                        self._forget(slot, key)
                        to_close.append(cat)
                        continue
                    if slot.count < self.per_repo:
                        if self._total < self.max_processes:
                            slot.count += 1
                            self._total += 1
                            break
                        evicted = self._evict_idle()
                        if evicted is not None:
                            to_close.append(evicted)
                            continue
                    await self._cond.wait()
        finally:
            for cat in to_close:
                self._closing.add(task := asyncio.ensure_future(cat.close()))
                task.add_done_callback(self._closing.discard)
        try:
            self.started += 1
            return await CatFile.start(self.git, git_dir)
        except BaseException:
            async with self._cond:
                self._forget(self._slots.setdefault(key, _Slot()), key)
                self._cond.notify_all()
            raise

    async def _release(self, key: Hashable, cat: CatFile) -> None:
        cat.last_used = time.monotonic()
        async with self._cond:
            slot = self._slots.setdefault(key, _Slot())
            if cat.alive and not self._closed:
                slot.idle.append(cat)
                cat = None  # type: ignore[assignment]
            else:
                self._forget(slot, key)
            self._cond.notify_all()
        if cat is not None:
            await cat.close()

    def _forget(self, slot: _Slot, key: Hashable) -> None:
        slot.count -= 1
        self._total -= 1
        if slot.count <= 0 and not slot.idle:
            self._slots.pop(key, None)

    def _evict_idle(self) -> CatFile | None:
        """The least recently used idle reader of any repository (caller holds the lock)."""
        oldest: tuple[float, Hashable, _Slot] | None = None
        for key, slot in self._slots.items():
            for cat in slot.idle:
                if oldest is None or cat.last_used < oldest[0]:
                    oldest = (cat.last_used, key, slot)
        if oldest is None:
            return None
        _, key, slot = oldest
        slot.idle.sort(key=lambda c: c.last_used)
        cat = slot.idle.pop(0)
        self._forget(slot, key)
        return cat

    async def _reap_idle(self) -> None:
        interval = max(0.5, min(self.idle_seconds / 2, 30.0))
        while True:
            await asyncio.sleep(interval)
            await self.reap(time.monotonic() - self.idle_seconds)

    async def reap(self, before: float) -> int:
        """Close idle readers last used before `before` (monotonic seconds)."""
        stale: list[CatFile] = []
        async with self._cond:
            for key, slot in list(self._slots.items()):
                keep = [c for c in slot.idle if c.alive and c.last_used >= before]
                gone = [c for c in slot.idle if c not in keep]
                slot.idle = keep
                for _ in gone:
                    self._forget(slot, key)
                stale += gone
            if stale:
                self._cond.notify_all()
        await asyncio.gather(*(c.close() for c in stale))
        return len(stale)
