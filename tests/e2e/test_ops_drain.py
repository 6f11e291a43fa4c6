"""SIGTERM drains: `python -m app serve` stops accepting, lets an in-flight clone finish,
and exits 0. The clone is slowed down by a throttling TCP proxy between git and the
server, so it is surely in flight when the signal arrives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path

from tests.helpers import PASSWORD, Git

PACK_BYTES = 12 * 1024 * 1024
SIGNAL_AFTER = 1024 * 1024
RATE_CHUNK, RATE_PAUSE = 64 * 1024, 0.02  # about 3 MB/s


def _env(data: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data.parent),
        "APP_DATA_DIR": str(data),
        "APP_SECRET_KEY": "d" * 48,
        "APP_SHUTDOWN_TIMEOUT": "120",
        "APP_LOG_FORMAT": "json",
    }


async def _cli(data: Path, *args: str, stdin: bytes = b"") -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, env=_env(data),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate(stdin)
    assert proc.returncode == 0, (args, out, err)


class Throttle:
    """127.0.0.1:0 -> target, server-to-client bytes paced; counts what went through."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = 0
        self.started_streaming = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []  # every socket, closed in close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers.append(up_writer)
        tasks = [
            asyncio.ensure_future(self._pipe(reader, up_writer, paced=False)),
            asyncio.ensure_future(self._pipe(up_reader, writer, paced=True)),
        ]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, paced: bool
    ) -> None:
        try:
            while chunk := await reader.read(RATE_CHUNK):
                writer.write(chunk)
                await writer.drain()
                if paced:
                    self.down += len(chunk)
                    if self.down >= SIGNAL_AFTER:
                        self.started_streaming.set()
                    await asyncio.sleep(RATE_PAUSE)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def close(self) -> None:
        """Close the listener and every connection it made (no socket left for the GC)."""
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def test_sigterm_lets_a_clone_finish_and_exits_zero(git: Git, tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _cli(data, "user", "create", "alice", "--password-stdin", stdin=f"{PASSWORD}\n".encode())
    await _cli(data, "repo", "create", "alice/big")
    work = tmp_path / "work"
    sha = await git.make_worktree(work, {"blob.bin": os.urandom(PACK_BYTES)})
    bare = data / "repositories" / "alice" / "big.git"
    (await git("push", "-q", str(bare), "main", cwd=work)).check()

    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "serve", "--port", "0", env=_env(data),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None and server.stderr is not None
    stderr_task = asyncio.ensure_future(server.stderr.read())
    throttle: Throttle | None = None
    try:
        line = (await asyncio.wait_for(server.stdout.readline(), 60)).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        throttle = Throttle(port)
        proxy_port = await throttle.start()
        target = tmp_path / "clone"
        url = f"http://127.0.0.1:{proxy_port}/alice/big.git"
        clone = asyncio.ensure_future(git("clone", "-q", url, str(target)))
        await asyncio.wait_for(throttle.started_streaming.wait(), 120)
        assert not clone.done()
        server.send_signal(signal.SIGTERM)
        # New connections are refused while the clone still streams.
        refused = False
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            except OSError:
                refused = True
                break
            await asyncio.sleep(0.02)
        assert refused
        result = await asyncio.wait_for(clone, 300)
        if result.code != 0:  # say what the server said about it
            server.kill()
            await server.wait()
            said = (await stderr_task).decode()[-4000:]
            raise AssertionError(f"{result.err}\nserver stderr:\n{said}")
        assert (await git("rev-parse", "HEAD", cwd=target)).check().out.strip() == sha
        assert (target / "blob.bin").stat().st_size == PACK_BYTES
        code = await asyncio.wait_for(server.wait(), 120)
        errors = (await stderr_task).decode()
        assert code == 0, errors
        assert "Traceback" not in errors
        await throttle.close()
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        stderr_task.cancel()
        if throttle is not None:
            await throttle.close()
