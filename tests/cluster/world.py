"""What the cluster tests do to the cluster: users, repositories, git, events, raw fetches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from tests.cluster.launcher import PASSWORD, Cluster, basic_header
from tests.helpers import Git, GitResult


@dataclass(frozen=True)
class Account:
    login: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def basic(self) -> str:
        return basic_header(self.login, self.token)


@dataclass
class World:
    cluster: Cluster
    session: aiohttp.ClientSession
    git: Git
    admin: Account

    def url(self, where: str) -> str:
        """`a`, `b` (instances) or `lb` (the balancer)."""
        if where == "lb":
            assert self.cluster.balancer is not None
            return self.cluster.balancer.url
        return self.cluster.instances[where].url

    # Users and repositories ---------------------------------------------------
    async def account(self, login: str) -> Account:
        """A user with a read,write,admin token (created on instance A by the admin)."""
        status, body = await self.api(
            "a",
            "POST",
            "/api/v1/admin/users",
            self.admin,
            {"login": login, "email": f"{login}@example.com", "password": PASSWORD},
        )
        assert status == 201, body
        status, body = await self.api(
            "a",
            "POST",
            "/api/v1/user/tokens",
            None,
            {"name": "cluster", "scopes": ["read", "write", "admin"]},
            headers={"Authorization": basic_header(login, PASSWORD)},
        )
        assert status == 201, body
        return Account(login, body["token"])

    async def create_repo(
        self, where: str, owner: Account, name: str, *, private: bool = True
    ) -> tuple[int, Any]:
        return await self.api(
            where, "POST", "/api/v1/user/repos", owner, {"name": name, "private": private}
        )

    async def repo(self, owner: Account, name: str, *, private: bool = True) -> str:
        status, body = await self.create_repo("a", owner, name, private=private)
        assert status == 201, body
        return f"{owner.login}/{name}"

    async def api(
        self,
        where: str,
        method: str,
        path: str,
        who: Account | None = None,
        body: object = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(who.headers if who else {})
        sent.update(headers or {})
        async with self.session.request(
            method, self.url(where) + path, json=body, headers=sent
        ) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def events(self, where: str, who: Account, full_name: str) -> list[dict[str, Any]]:
        status, body = await self.api(
            where, "GET", f"/api/v1/repos/{full_name}/events?per_page=100", who
        )
        assert status == 200, body
        assert isinstance(body, list)
        return body

    # git --------------------------------------------------------------------
    def remote(self, where: str, full_name: str) -> str:
        return f"{self.url(where)}/{full_name}.git"

    async def run_git(
        self, who: Account, *args: str, cwd: Path | None = None, timeout: float = 300
    ) -> GitResult:
        """git with the account's token sent on every request (no anonymous first try)."""
        return await self.git(
            "-c", f"http.extraHeader=Authorization: {who.basic}", *args, cwd=cwd, timeout=timeout
        )

    async def commit(self, tree: Path, files: dict[str, bytes | str], message: str) -> str:
        for rel, content in files.items():
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        (await self.git("add", "-A", cwd=tree)).check()
        (await self.git("commit", "-q", "-m", message, cwd=tree)).check()
        return (await self.git("rev-parse", "HEAD", cwd=tree)).check().out.strip()

    async def worktree(self, path: Path, files: dict[str, bytes | str]) -> str:
        (await self.git("init", "-q", "-b", "main", str(path))).check()
        return await self.commit(path, files, "initial")

    async def ls_remote(self, who: Account, where: str, full_name: str) -> dict[str, str]:
        out = (await self.run_git(who, "ls-remote", self.remote(where, full_name))).check().out
        refs = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            refs[ref] = sha
        return refs

    # Events over WebSocket ----------------------------------------------------
    @contextlib.asynccontextmanager
    async def subscriber(
        self, where: str, who: Account, repos: list[str], since_id: int | None = None
    ) -> AsyncIterator[Subscriber]:
        ws_url = self.url(where).replace("http://", "ws://") + "/api/v1/events"
        async with self.session.ws_connect(ws_url, headers=who.headers, heartbeat=30) as ws:
            message: dict[str, Any] = {"type": "subscribe", "repos": repos}
            if since_id is not None:
                message["since_id"] = since_id
            await ws.send_json(message)
            subscriber = Subscriber(ws)
            await subscriber.sync()
            yield subscriber


class Subscriber:
    """A WebSocket event client that collects `event` messages."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []

    async def _next(self, timeout: float) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"WebSocket closed or not text: {message!r}")
        data: dict[str, Any] = json.loads(message.data)
        if data.get("type") == "event":
            self.events.append(data)
        else:
            self.other.append(data)
        return data

    async def sync(self, timeout: float = 30) -> None:
        """Ping and wait for the pong: everything sent before it has been handled."""
        await self.ws.send_json({"type": "ping"})
        while (await self._next(timeout)).get("type") != "pong":
            pass

    async def wait_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> list[dict[str, Any]]:
        """Until an event matching `predicate` arrived (a generous bound)."""
        while not any(predicate(e) for e in self.events):
            await self._next(timeout)
        return self.events

    async def wait_for(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Until `count` events arrived in all (a generous bound, never a speed check)."""
        while len(self.events) < count:
            await self._next(timeout)
        return self.events


# Raw Smart HTTP: a v0 fetch whose pace the test controls --------------------------
def pkt(line: str) -> bytes:
    data = line.encode()
    return f"{len(data) + 4:04x}".encode() + data


class PackStream:
    """POST git-upload-pack for one commit; read the side-band pack into a file."""

    def __init__(self, response: aiohttp.ClientResponse, out: Path):
        self.response = response
        self.out = out
        self.pack_bytes = 0
        self.finished = False
        self._file = out.open("wb")

    @classmethod
    async def open(
        cls, session: aiohttp.ClientSession, url: str, sha: str, who: Account, out: Path
    ) -> PackStream:
        body = pkt(f"want {sha} side-band-64k ofs-delta no-progress\n") + b"0000" + pkt("done\n")
        response = await session.post(
            f"{url}/git-upload-pack",
            data=body,
            headers={
                "Content-Type": "application/x-git-upload-pack-request",
                "Authorization": who.basic,
            },
        )
        assert response.status == 200, await response.text()
        return cls(response, out)

    async def read_some(self, at_least: int) -> None:
        """Read until `at_least` pack bytes arrived (or the stream ended)."""
        while not self.finished and self.pack_bytes < at_least:
            await self._packet()

    async def read_rest(self) -> None:
        try:
            while not self.finished:
                await self._packet()
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()
        self.response.release()

    async def _packet(self) -> None:
        content = self.response.content
        head = await content.readexactly(4)
        size = int(head, 16)
        if size == 0:
            self.finished = True
            return
        payload = await content.readexactly(size - 4)
        if payload.startswith(b"NAK") or payload.startswith(b"ACK"):
            return
        band, data = payload[0], payload[1:]
        if band == 1:
            self._file.write(data)
            self.pack_bytes += len(data)
        elif band == 3:
            raise AssertionError(f"server error band: {data!r}")


async def pack_is_complete(git: Git, pack: Path, scratch: Path) -> bool:
    """True when `pack` is a whole, valid pack (git index-pack accepts it)."""
    (await git("init", "-q", "--bare", str(scratch))).check()
    with pack.open("rb") as stdin:
        return await _index_pack(git, scratch, stdin)


async def _index_pack(git: Git, scratch: Path, stdin: BinaryIO) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        str(scratch),
        "index-pack",
        "--stdin",
        "--fix-thin",
        stdin=stdin,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=git.env(),
    )
    return await proc.wait() == 0


def random_blob(size: int) -> bytes:
    return os.urandom(size)


async def pack_between(git: Git, tree: Path, old: str | None, new: str) -> bytes:
    """The pack a push of `new` over `old` sends (git pack-objects, as send-pack does)."""
    revs = f"{new}\n" + (f"^{old}\n" if old else "")
    result = await asyncio.create_subprocess_exec(
        "git",
        "pack-objects",
        "--stdout",
        "--revs",
        "--thin",
        "-q",
        cwd=str(tree),
        env=git.env(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await result.communicate(revs.encode())
    assert result.returncode == 0
    return out


class HeldPush:
    """POST git-receive-pack whose body the test releases in two parts."""

    def __init__(self, first: bytes, rest: bytes):
        self.first = first
        self.rest = rest
        self.release = asyncio.Event()

    async def body(self) -> AsyncIterator[bytes]:
        yield self.first
        await self.release.wait()
        for start in range(0, len(self.rest), 65536):
            yield self.rest[start : start + 65536]

    @classmethod
    def of(cls, old: str, new: str, pack: bytes, hold_at: int) -> HeldPush:
        command = pkt(f"{old} {new} refs/heads/main\0report-status side-band-64k\n") + b"0000"
        data = command + pack
        return cls(data[:hold_at], data[hold_at:])
