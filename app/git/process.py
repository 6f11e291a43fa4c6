"""Starting git: a fixed environment, argv lists, small outputs read whole, big ones streamed.

Server-wide git configuration travels in the environment (`GIT_CONFIG_COUNT`/`KEY_n`/
`VALUE_n`), so every repository gets the same policy and none can bring its own hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# Legacy object quirks that real histories contain; everything else fsck finds is refused.
_RELAXED_FSCK_IDS = ("badTimezone", "zeroPaddedFilemode", "missingSpaceBeforeDate")


class GitError(Exception):
    """git exited non-zero where the caller expected success."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: bytes):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.decode("utf-8", "replace").strip()
        super().__init__(f"git {' '.join(self.argv[:3])} exited {returncode}: {self.stderr[:300]}")


@dataclass(frozen=True)
class GitConfig:
    """What every git process started by the server shares."""

    git_bin: str
    home: Path
    hooks_path: Path
    max_push_bytes: int
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def config_pairs(self) -> list[tuple[str, str]]:
        pairs = [
            ("core.hooksPath", str(self.hooks_path)),
            ("core.fsync", "committed,reference"),
            ("receive.fsckObjects", "true"),
            ("receive.maxInputSize", str(self.max_push_bytes)),
            # Keep pushed packs: exploding them into loose objects is most of a push's
            # time on big blobs. Background maintenance compacts later.
            ("receive.unpackLimit", "1"),
            ("receive.denyNonFastForwards", "false"),
            ("http.getanyfile", "false"),
            ("http.uploadpack", "true"),
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowAnySHA1InWant", "false"),
            ("gc.autoDetach", "true"),
            ("safe.directory", "*"),
        ]
        pairs += [(f"receive.fsck.{msg_id}", "ignore") for msg_id in _RELAXED_FSCK_IDS]
        pairs += [(f"fsck.{msg_id}", "ignore") for msg_id in _RELAXED_FSCK_IDS]
        return pairs

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """An allow-listed environment: never the server's own (it holds secrets)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(self.home),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_NO_REPLACE_OBJECTS": "1",
        }
        pairs = self.config_pairs()
        env["GIT_CONFIG_COUNT"] = str(len(pairs))
        for index, (key, value) in enumerate(pairs):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        env.update(self.extra_env)
        if extra:
            env.update(extra)
        return env


async def run_git(
    config: GitConfig,
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = 120.0,  # noqa: ASYNC109 (a bound for the whole run, wait_for below)
    env: Mapping[str, str] | None = None,
) -> tuple[int, bytes, bytes]:
    """Run git for a small output; returns (returncode, stdout, stderr)."""
    argv = _argv(config, git_dir, args)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=config.env(env),
        cwd=str(config.home),
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    finally:
        await _reap(proc)
    code = proc.returncode if proc.returncode is not None else -1
    if check and code != 0:
        raise GitError(args, code, err)
    return code, out, err


@contextlib.asynccontextmanager
async def open_git(
    config: GitConfig,
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bool = False,
    cwd: Path | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A git process whose output the caller streams; killed and reaped on exit."""
    argv = _argv(config, git_dir, args)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=config.env(env),
        cwd=str(cwd or config.home),
        limit=1024 * 1024,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        await _reap(proc)


class GitOutput:
    """A running git whose stdout the caller parses; its stderr is read to the end in the
    background (only the start kept), so a chatty git never blocks on a full pipe."""

    def __init__(self, proc: asyncio.subprocess.Process, args: Sequence[str]):
        assert proc.stdout is not None and proc.stderr is not None
        self.stdout: asyncio.StreamReader = proc.stdout
        self._proc = proc
        self._args = args
        self._stderr = asyncio.ensure_future(_read_capped(proc.stderr, 64 * 1024))

    async def finish(self) -> None:
        """After stdout was read to its end: GitError if git exited non-zero."""
        code = await self._proc.wait()
        err = await self._stderr
        if code != 0:
            raise GitError(self._args, code, err)

    async def _stop(self) -> None:
        self._stderr.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._stderr


@contextlib.asynccontextmanager
async def reading_git(
    config: GitConfig,
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[GitOutput]:
    """git for output read as it streams. Leaving early (a limit was reached, the request
    went away) kills git; call `finish()` after reading to the end to check its exit."""
    async with open_git(config, args, git_dir=git_dir, env=env) as proc:
        output = GitOutput(proc, args)
        try:
            yield output
        finally:
            await output._stop()


async def stream_git(
    config: GitConfig,
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    chunk_size: int = 256 * 1024,
) -> AsyncIterator[bytes]:
    """Yield git's stdout as it comes; raise GitError if it fails before anything is sent."""
    async with reading_git(config, args, git_dir=git_dir) as output:
        sent = False
        while chunk := await output.stdout.read(chunk_size):
            sent = True
            yield chunk
        try:
            await output.finish()
        except GitError as exc:
            if not sent:
                raise
            log.warning("git %s failed after output: %s", args[:2], exc.stderr[:300])


def use_pidfd_child_watcher(loop: asyncio.AbstractEventLoop) -> bool:
    """Python 3.11 watches each child process with a new thread (ThreadedChildWatcher):
    about 0.3 ms of thread start per git process, on every request. Linux pidfds let the
    event loop itself wait for exits, which is what Python 3.12+ picks by default; do the
    same on 3.11. For the server's one long-lived loop only (the watcher is bound to it).
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False  # kernel older than 5.3, or pidfds not allowed here
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)
    return True


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    """Read a stream to EOF, keeping its first `cap` bytes."""
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
    return bytes(kept)


def _argv(config: GitConfig, git_dir: Path | None, args: Sequence[str]) -> list[str]:
    argv = [config.git_bin]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    argv.extend(args)
    return argv


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill if still running and wait, so no zombie and no orphan outlives a request.

    Every git process starts in its own process group (start_new_session), and the whole
    group is killed: SIGKILL to `http-backend` or `upload-pack` alone would leave the
    `upload-pack` / `pack-objects` it started running as orphans. (The group id cannot
    be reused while the leader is unreaped, i.e. while returncode is None.)
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.shield(proc.wait())
