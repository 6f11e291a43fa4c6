"""Name, ref and path validation (CONTRACT §2, SECURITY-NOTES rules 1 and 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import Invalid, NotFound
from app.git.names import (
    GIT_PROTOCOL_RE,
    SHA_RE,
    check_owner,
    check_repo,
    is_valid_owner,
    is_valid_ref,
    is_valid_repo,
    is_valid_tree_path,
    route_names,
    safe_join,
    strip_git_suffix,
)

GOOD_OWNERS = ["a", "A", "0", "alice", "Alice-Bob", "a-b-c", "x" * 39, "9lives", "a--b", "ab-"]
BAD_OWNERS = [
    "",
    "-alice",
    "x" * 40,
    "al ice",
    "al_ice",
    "al.ice",
    "alice\n",
    "\nalice",
    "alice\x00",
    "ali/ce",
    "..",
    "ålice",
    "alice\r\n",
    "ali%63e",
    "\u0430lice",  # Cyrillic a
]


@pytest.mark.parametrize("name", GOOD_OWNERS)
def test_good_owner(name: str) -> None:
    assert is_valid_owner(name)
    assert check_owner(name) == name


@pytest.mark.parametrize("name", BAD_OWNERS)
def test_bad_owner(name: str) -> None:
    assert not is_valid_owner(name)
    with pytest.raises(Invalid) as info:
        check_owner(name, field="login")
    assert info.value.errors is not None and info.value.errors[0]["field"] == "login"


GOOD_REPOS = [
    "r",
    "repo",
    "my.repo",
    "my_repo",
    "my-repo",
    "R3p0",
    "a..b",
    "x" * 100,
    "git",
    "a.gi",
]
BAD_REPOS = [
    "",
    ".",
    "..",
    ".hidden",
    "-rf",
    "--upload-pack=x",
    "x" * 101,
    "repo.git",
    "repo.GIT",
    "a/b",
    "../etc",
    "..%2F..%2Fetc",
    "re po",
    "repo\n",
    "repo\x00",
    "repo\\x",
    "répo",
    "repo:x",
    "~repo",
]


@pytest.mark.parametrize("name", GOOD_REPOS)
def test_good_repo(name: str) -> None:
    assert is_valid_repo(name)
    assert check_repo(name) == name


@pytest.mark.parametrize("name", BAD_REPOS)
def test_bad_repo(name: str) -> None:
    assert not is_valid_repo(name)
    with pytest.raises(Invalid):
        check_repo(name)


def test_git_suffix_is_optional_in_urls() -> None:
    assert strip_git_suffix("repo.git") == "repo"
    assert strip_git_suffix("repo.GIT") == "repo"
    assert strip_git_suffix("repo") == "repo"
    assert strip_git_suffix(".git") == ".git"  # nothing would be left: stays invalid
    assert route_names("alice", "repo.git") == ("alice", "repo")
    assert route_names("Alice", "Repo") == ("Alice", "Repo")


@pytest.mark.parametrize(
    ("owner", "repo"),
    [
        ("alice", "../../etc"),
        ("alice", ".."),
        ("alice", ".git"),
        ("alice", "repo.git.git"),
        ("..", "repo"),
        ("alice\n", "repo"),
        ("alice", "repo\n.git"),
        ("alice", "-repo"),
        ("", "repo"),
        ("alice", ""),
    ],
)
def test_route_names_refuse_as_not_found(owner: str, repo: str) -> None:
    """Invalid names from a URL are simply not found: no hint about why."""
    with pytest.raises(NotFound):
        route_names(owner, repo)


GOOD_REFS = [
    "refs/heads/main",
    "main",
    "feature/x",
    "v1.0",
    "refs/tags/v1.0.0",
    "a-b_c",
    "feature--x",
    "x/y/z",
    "HEAD",
]
BAD_REFS = [
    "",
    "-main",
    "--upload-pack=touch /tmp/x",
    "--output=/tmp/x",
    "/main",
    "main/",
    "main.",
    "main.lock",
    "@",
    "a..b",
    "a//b",
    "a@{1}",
    "a\\b",
    "a b",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[",
    "a\x7f",
    "a\n",
    "a\x00",
    "refs/heads/.hidden",
    "x" * 1025,
]


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_good_ref(ref: str) -> None:
    assert is_valid_ref(ref)


@pytest.mark.parametrize("ref", BAD_REFS)
def test_bad_ref(ref: str) -> None:
    assert not is_valid_ref(ref)


@pytest.mark.parametrize("path", ["README.md", "a/b/c.txt", "dir/", "", "a b/c", ".github/x"])
def test_good_tree_path(path: str) -> None:
    assert is_valid_tree_path(path)


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a\x00b", "a\\b", "x" * 4097, ".."]
)
def test_bad_tree_path(path: str) -> None:
    assert not is_valid_tree_path(path)


def test_sha_and_protocol_patterns_are_exact() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert SHA_RE.match(sha)
    assert SHA_RE.match(sha + "0" * 24)  # SHA-256
    for bad in (sha + "\n", sha.upper(), sha[:-1], sha + "0", "-" + sha[1:]):
        assert not SHA_RE.match(bad)
    assert GIT_PROTOCOL_RE.match("version=2")
    assert GIT_PROTOCOL_RE.match("version=2:object-format=sha1")
    for bad in ("version=2\n", "version 2", "v=2;x", "", "x" * 65):
        assert not GIT_PROTOCOL_RE.match(bad)


def test_safe_join_stays_under_root(tmp_path: Path) -> None:
    root = tmp_path / "repos"
    root.mkdir()
    assert safe_join(root, "alice", "pub.git") == (root / "alice" / "pub.git").resolve()
    for parts in (("..", "x"), ("alice", "..", "..", "etc"), ("/etc",)):
        with pytest.raises(NotFound):
            safe_join(root, *parts)
    # A symlink inside the root that points outside is refused as well.
    (root / "evil").symlink_to(tmp_path)
    with pytest.raises(NotFound):
        safe_join(root, "evil", "x")


def test_storage_path_refuses_invalid_stored_names(tmp_path: Path) -> None:
    from app.git.process import GitConfig
    from app.git.repos import RepoStorage

    config = GitConfig("git", tmp_path, tmp_path / "hooks", 1024)
    storage = RepoStorage(tmp_path / "repos", tmp_path / "trash", config)
    assert storage.path("Alice", "Pub").name == "Pub.git"
    for owner, name in (("alice", ".."), ("..", "x"), ("alice", "x\n"), ("alice", "x.git")):
        with pytest.raises(ValueError):
            storage.path(owner, name)
