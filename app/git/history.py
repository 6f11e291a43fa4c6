"""History and diffs: commit parsing, `rev-list` walks and `diff-tree -z`, read as they stream.

Every revision given to git here is a full object id that a reader resolved first; the
only user text passed on is a validated path (after `--`, with literal pathspecs) and
an author string inside a single `--author=` argument with `--fixed-strings`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from app.git.names import SHA_RE
from app.git.process import GitConfig, GitError, reading_git, run_git

LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}
_PERSON_RE = re.compile(rb"^(.*?) ?<([^>]*)> (-?\d+)(?: ([+-]\d{4}))?\s*$")
_STATUS = {
    "A": "added",
    "D": "removed",
    "M": "modified",
    "R": "renamed",
    "C": "copied",
    "T": "changed",
    "U": "changed",
}


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    date: datetime


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    message: str


@dataclass(slots=True)
class FileChange:
    filename: str
    status: str
    old_sha: str
    new_sha: str
    previous_filename: str | None = None
    additions: int = 0
    deletions: int = 0
    binary: bool = False
    patch: str | None = None


@dataclass
class Diff:
    files: list[FileChange] = field(default_factory=list)
    total_files: int = 0

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


def _require_sha(*shas: str) -> None:
    for sha in shas:
        if not SHA_RE.match(sha):
            raise ValueError(f"object id expected, got {sha[:50]!r}")


def _person(raw: bytes) -> Person:
    match = _PERSON_RE.match(raw)
    if not match:
        return Person(raw.decode("utf-8", "replace"), "", datetime.fromtimestamp(0, UTC))
    name, email, seconds, offset = match.groups()
    when = datetime.fromtimestamp(max(0, min(int(seconds), 253402300799)), UTC)
    if offset:
        sign = -1 if offset.startswith(b"-") else 1
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        when = when.astimezone(timezone(timedelta(minutes=sign * minutes)))
    return Person(name.decode("utf-8", "replace"), email.decode("utf-8", "replace"), when)


def parse_commit(sha: str, data: bytes) -> Commit:
    """A raw commit object (headers, a blank line, the message); continuation lines skipped."""
    head, _, message = data.partition(b"\n\n")
    tree = ""
    parents: list[str] = []
    author = committer = Person("", "", datetime.fromtimestamp(0, UTC))
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == b"tree":
            tree = value.decode("ascii", "replace")
        elif key == b"parent":
            parents.append(value.decode("ascii", "replace"))
        elif key == b"author":
            author = _person(value)
        elif key == b"committer":
            committer = _person(value)
    return Commit(sha, tree, tuple(parents), author, committer, message.decode("utf-8", "replace"))


@dataclass
class RevPage:
    shas: list[str]
    total: int
    every: list[str] | None = None  # all of them, when asked for and at most keep_all


@dataclass(frozen=True)
class RevFilter:
    path: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    author: str | None = None

    def args(self) -> list[str]:
        args = []
        if self.since is not None:
            args.append(f"--max-age={int(self.since.timestamp())}")
        if self.until is not None:
            args.append(f"--min-age={int(self.until.timestamp())}")
        if self.author:
            args += ["--fixed-strings", "--regexp-ignore-case", f"--author={self.author}"]
        return args


async def rev_list(
    git: GitConfig,
    git_dir: Path,
    include: Sequence[str],
    *,
    exclude: Sequence[str] = (),
    filters: RevFilter = RevFilter(),
    skip: int = 0,
    limit: int = 30,
    reverse: bool = False,
    keep_all: int = 0,
) -> RevPage:
    """Commit ids reachable from include and not from exclude, newest first (or oldest first
    with reverse): the slice [skip, skip+limit) and the total, counted as the output streams.
    With keep_all, the whole list too while it has at most keep_all ids."""
    _require_sha(*include, *exclude)
    args = ["rev-list", *filters.args()]
    if reverse:
        args.append("--reverse")
    args += [*include, *(f"^{sha}" for sha in exclude), "--"]
    if filters.path:
        args.append(filters.path)
    page: list[str] = []
    every: list[str] | None = [] if keep_all else None
    total = 0
    async for line in _lines(git, git_dir, args):
        sha = line.decode("ascii")
        if skip <= total < skip + limit:
            page.append(sha)
        if every is not None:
            every.append(sha)
            if len(every) > keep_all:
                every = None
        total += 1
    return RevPage(page, total, every)


async def _lines(git: GitConfig, git_dir: Path, args: list[str]) -> AsyncIterator[bytes]:
    async with reading_git(git, args, git_dir=git_dir, env=LITERAL) as output:
        while line := await output.stdout.readline():
            yield line.rstrip(b"\n")
        await output.finish()


async def merge_base(git: GitConfig, git_dir: Path, a: str, b: str) -> str | None:
    _require_sha(a, b)
    code, out, err = await run_git(git, ["merge-base", a, b], git_dir=git_dir, check=False)
    if code == 1:
        return None
    if code != 0:
        raise GitError(["merge-base"], code, err)
    return out.decode("ascii").strip() or None


async def ahead_behind(git: GitConfig, git_dir: Path, base: str, head: str) -> tuple[int, int]:
    """(ahead, behind): commits in head not in base, and in base not in head."""
    _require_sha(base, head)
    _, out, _ = await run_git(
        git, ["rev-list", "--left-right", "--count", f"{base}...{head}", "--"], git_dir=git_dir
    )
    behind, ahead = out.decode("ascii").split()
    return int(ahead), int(behind)


async def diff(
    git: GitConfig,
    git_dir: Path,
    old: str | None,
    new: str,
    *,
    max_files: int = 300,
    max_patch_bytes: int = 1024 * 1024,
) -> Diff:
    """Files changed from old to new (old None: a root commit), with numstat and patches.

    One `diff-tree -z --raw --numstat -p` process, read as it streams: raw records, then
    numstat records, then the patch text, split per file on `diff --git` lines. Patches
    stop once max_patch_bytes is spent (the process is killed); later files get none.
    """
    _require_sha(new, *([old] if old else []))
    args = ["diff-tree", "-r", "-z", "-M", "--raw", "--numstat", "-p", "--no-color"]
    args += ["--no-commit-id", "--no-ext-diff", "--no-textconv", "--full-index"]
    args += [old, new] if old else ["--root", new]
    result = Diff()
    async with reading_git(git, args, git_dir=git_dir) as output:
        await _read_diff(output.stdout, result, max_files, max_patch_bytes)
        if output.stdout.at_eof():  # read to the end (else stopped early: killed on exit)
            await output.finish()
    return result


async def _token(stream: asyncio.StreamReader) -> bytes | None:
    try:
        return (await stream.readuntil(b"\x00"))[:-1]
    except asyncio.IncompleteReadError as end:
        return end.partial or None


async def _read_diff(
    stream: asyncio.StreamReader, result: Diff, max_files: int, max_patch_bytes: int
) -> None:
    # 1. raw records: ":om nm osha nsha S\0path\0[path2\0]"
    records: list[FileChange] = []
    token = await _token(stream)
    while token is not None and token.startswith(b":"):
        _, _, old_sha, new_sha, status = token[1:].decode("ascii").split(" ")
        src = (await _token(stream)) or b""
        change = FileChange(
            src.decode("utf-8", "replace"), _STATUS.get(status[0], "changed"), old_sha, new_sha
        )
        if status[0] in "RC":
            dst = (await _token(stream)) or b""
            change.previous_filename = change.filename
            change.filename = dst.decode("utf-8", "replace")
        result.total_files += 1
        if len(records) < max_files:
            records.append(change)
        token = await _token(stream)
    # 2. numstat records, one per raw record: "A\tD\tpath\0" or "A\tD\t\0src\0dst\0"
    for index in range(result.total_files):
        if token is None:
            break
        added, deleted, path = token.split(b"\t", 2)
        if not path:  # a rename: two more tokens
            await _token(stream)
            await _token(stream)
        if index < len(records):
            change = records[index]
            change.binary = added == b"-"
            change.additions = int(added) if added.isdigit() else 0
            change.deletions = int(deleted) if deleted.isdigit() else 0
        token = await _token(stream) if index + 1 < result.total_files else None
    result.files = records
    # 3. the patch: after one more NUL, plain text; "diff --git" starts each file's part.
    if result.total_files:
        await _token(stream)
    await _read_patches(stream, records, max_patch_bytes)


async def _read_patches(
    stream: asyncio.StreamReader, records: list[FileChange], budget: int
) -> None:
    index = -1
    current: list[bytes] = []
    in_hunks = False

    def flush() -> None:
        if 0 <= index < len(records) and current and not records[index].binary:
            records[index].patch = b"".join(current).decode("utf-8", "replace").rstrip("\n")

    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than the stream limit: stop patching here
            return
        if not line:
            break
        if line.startswith(b"diff --git "):
            flush()
            index += 1
            current = []
            in_hunks = False
            if index >= len(records):
                return
            continue
        if line.startswith(b"@@"):
            in_hunks = True
        if in_hunks:
            budget -= len(line)
            if budget < 0:
                return  # the rest gets no patch, as GitHub does for large diffs
            current.append(line)
    flush()
