"""Validation of untrusted names, refs and paths (CONTRACT §2).

Values are checked on what the router hands over (already percent-decoded) and
before they touch the disk or a git command line.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.errors import Invalid, NotFound

# `\Z`, not `$`: `$` also matches before a trailing newline, so "alice\n" would pass
# `.match()` (and aiohttp decodes %0A in a path). Every caller may use `.match()`.
OWNER_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\Z")
REPO_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}\Z")
SHA_RE = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")
GIT_PROTOCOL_RE = re.compile(r"^[A-Za-z0-9=:._-]{1,64}\Z")


def is_valid_owner(name: str) -> bool:
    return bool(OWNER_RE.match(name))


def is_valid_repo(name: str) -> bool:
    return (
        bool(REPO_RE.match(name))
        and name not in (".", "..")
        and not name.startswith(("-", "."))
        and not name.lower().endswith(".git")
    )


def strip_git_suffix(name: str) -> str:
    """The `.git` suffix in a URL is optional."""
    return name[:-4] if name.lower().endswith(".git") and len(name) > 4 else name


def check_owner(name: str, *, field: str = "owner") -> str:
    if not is_valid_owner(name):
        raise Invalid.field("User", field, message=f"invalid name {name[:80]!r}")
    return name


def check_repo(name: str, *, field: str = "name") -> str:
    if not is_valid_repo(name):
        raise Invalid.field("Repository", field, message=f"invalid repository name {name[:120]!r}")
    return name


def route_names(owner: str, repo: str) -> tuple[str, str]:
    """Names from a URL: anything invalid is simply not found (no hint about why)."""
    repo = strip_git_suffix(repo)
    if not is_valid_owner(owner) or not is_valid_repo(repo):
        raise NotFound()
    return owner, repo


def is_valid_ref(ref: str) -> bool:
    """A conservative subset of `git check-ref-format` for refs from users.

    Refuses anything git could read as an option and every form git itself rejects.
    """
    if not ref or len(ref) > 1024 or ref.startswith("-") or ref.startswith("/"):
        return False
    if ref.endswith(("/", ".", ".lock")) or ref == "@":
        return False
    if any(bad in ref for bad in ("..", "//", "@{", "\\")):
        return False
    if any(ord(c) < 0x20 or c in " ~^:?*[\x7f" for c in ref):
        return False
    return all(part and not part.startswith(".") for part in ref.split("/"))


def is_valid_tree_path(path: str) -> bool:
    """A path inside a repository tree: relative, no `.`/`..` parts, no NUL."""
    if len(path) > 4096 or "\x00" in path or "\\" in path or path.startswith("/"):
        return False
    parts = path.split("/")
    return all(part not in (".", "..") for part in parts if part) and "" not in parts[1:-1]


def safe_join(root: Path, *parts: str) -> Path:
    """Join validated parts under root and prove the result stays inside it."""
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise NotFound()
    return candidate
