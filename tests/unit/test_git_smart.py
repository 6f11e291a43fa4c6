"""The smart HTTP protocol facts that replace git http-backend (app/git/smart.py)."""

from __future__ import annotations

import gzip

import pytest

from app.errors import BadRequest, PayloadTooLarge
from app.git.smart import (
    CapabilityCache,
    GzipInflater,
    advertisement_preamble,
    content_type,
    protocol_version,
    service_args,
    service_env,
)


def test_service_args() -> None:
    assert service_args("git-upload-pack", advertise=True) == [
        "upload-pack",
        "--stateless-rpc",
        "--advertise-refs",
        ".",
    ]
    assert service_args("git-receive-pack", advertise=False) == [
        "receive-pack",
        "--stateless-rpc",
        ".",
    ]
    with pytest.raises(ValueError):
        service_args("git-upload-archive", advertise=False)


def test_content_types() -> None:
    assert content_type("git-upload-pack", advertise=True) == (
        "application/x-git-upload-pack-advertisement"
    )
    assert content_type("git-receive-pack", advertise=False) == (
        "application/x-git-receive-pack-result"
    )


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (None, 0),
        ("", 0),
        ("version=2", 2),
        ("version=1", 1),
        ("a=b:version=2", 2),
        ("version=9", 0),
    ],
)
def test_protocol_version(header: str | None, version: int) -> None:
    assert protocol_version(header) == version


def test_preamble_as_http_backend_writes_it() -> None:
    assert advertisement_preamble("git-upload-pack", None) == (
        b"001e# service=git-upload-pack\n0000"
    )
    assert advertisement_preamble("git-receive-pack", "version=1") == (
        b"001f# service=git-receive-pack\n0000"
    )
    assert advertisement_preamble("git-upload-pack", "version=2") == b""


def test_service_env() -> None:
    env = service_env(git_protocol="version=2", remote_user="alice", remote_addr="127.0.0.1")
    assert env["GIT_PROTOCOL"] == "version=2"
    assert env["REMOTE_USER"] == "alice"
    assert env["GIT_COMMITTER_EMAIL"] == "alice@http.127.0.0.1"
    anonymous = service_env(git_protocol="version=2\nX=1", remote_user=None, remote_addr="")
    assert "GIT_PROTOCOL" not in anonymous  # fails the strict pattern: not passed on
    assert "REMOTE_USER" not in anonymous
    assert anonymous["GIT_COMMITTER_NAME"] == "anonymous"


def test_inflater_bounded_pieces() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    body = gzip.compress(data)
    inflater = GzipInflater(limit=2 * len(data), piece=64 * 1024)
    out = []
    for i in range(0, len(body), 1000):
        out.extend(inflater.feed(body[i : i + 1000]))
    inflater.finish()
    assert b"".join(out) == data
    assert max(len(piece) for piece in out) <= 64 * 1024


def test_inflater_cap() -> None:
    bomb = gzip.compress(b"\0" * (4 * 1024 * 1024))  # 4 KiB in, 4 MiB out
    inflater = GzipInflater(limit=1024 * 1024)
    with pytest.raises(PayloadTooLarge):
        for _ in inflater.feed(bomb):
            pass


def test_inflater_bad_and_truncated() -> None:
    with pytest.raises(BadRequest):
        list(GzipInflater(limit=1024).feed(b"not gzip at all"))
    body = gzip.compress(b"hello world" * 100)
    inflater = GzipInflater(limit=1 << 20)
    list(inflater.feed(body[:-10]))
    with pytest.raises(BadRequest):
        inflater.finish()


V2 = b"000eversion 2\n0015agent=git/2.39.5\n0000"


def test_capability_cache_keeps_only_v2_advertisements() -> None:
    cache = CapabilityCache(max_entries=2)
    cache.put((1, "t"), V2)
    cache.put((2, "t"), b"001e# service=git-upload-pack\n0000")  # a v0 answer: refs, not cached
    cache.put((3, "t"), V2[:-4])  # truncated
    assert cache.get((1, "t")) == V2
    assert cache.get((2, "t")) is None
    assert cache.get((3, "t")) is None


def test_capability_cache_is_bounded_lru() -> None:
    cache = CapabilityCache(max_entries=2)
    cache.put(1, V2)
    cache.put(2, V2)
    assert cache.get(1) == V2  # 1 is now the most recent
    cache.put(3, V2)
    assert cache.get(2) is None
    assert cache.get(1) == V2 and cache.get(3) == V2
    cache.drop(1)
    assert cache.get(1) is None
