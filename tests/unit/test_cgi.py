"""The CGI side of `git http-backend`: the environment handed to it and the header
block it prints, without a process."""

from __future__ import annotations

import pytest

from app.web.cgi import (
    MAX_CGI_HEADER_BYTES,
    CgiHeaderError,
    backend_env,
    parse_headers,
    split_header_block,
)


def _env(**overrides: object) -> dict[str, str]:
    values: dict[str, object] = {
        "project_root": "/data/repositories",
        "path_info": "/alice/pub.git/git-upload-pack",
        "method": "POST",
        "service": "git-upload-pack",
        "remote_user": None,
        "remote_addr": "127.0.0.1",
        "content_type": "application/x-git-upload-pack-request",
        "git_protocol": None,
        "gzip_body": False,
    }
    values.update(overrides)
    return backend_env(**values)  # type: ignore[arg-type]


def test_env_for_post() -> None:
    env = _env()
    assert env["GIT_PROJECT_ROOT"] == "/data/repositories"
    assert env["PATH_INFO"] == "/alice/pub.git/git-upload-pack"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["QUERY_STRING"] == ""
    assert env["CONTENT_TYPE"] == "application/x-git-upload-pack-request"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    # http-backend reads to EOF: no length that could disagree with a chunked/gzip body.
    assert "CONTENT_LENGTH" not in env
    assert "REMOTE_USER" not in env
    assert "GIT_PROTOCOL" not in env
    assert "HTTP_CONTENT_ENCODING" not in env


def test_env_for_info_refs() -> None:
    env = _env(method="GET", path_info="/alice/pub.git/info/refs", content_type=None)
    assert env["QUERY_STRING"] == "service=git-upload-pack"
    assert "CONTENT_TYPE" not in env


def test_env_remote_user_and_gzip() -> None:
    env = _env(remote_user="alice", gzip_body=True, service="git-receive-pack")
    assert env["REMOTE_USER"] == "alice"
    assert env["HTTP_CONTENT_ENCODING"] == "gzip"


@pytest.mark.parametrize(
    ("header", "passed"),
    [
        ("version=2", True),
        ("version=2:object-format=sha1", True),
        ("version=2\nX=1", False),
        ("version=2 ; rm -rf", False),
        ("x" * 65, False),
        ("", False),
    ],
)
def test_env_git_protocol_is_validated(header: str, passed: bool) -> None:
    env = _env(git_protocol=header)
    assert ("GIT_PROTOCOL" in env) == passed
    if passed:
        assert env["GIT_PROTOCOL"] == header


def test_env_holds_nothing_else() -> None:
    """Only CGI variables: the server's own environment (secrets) never gets in here."""
    env = _env(remote_user="alice", git_protocol="version=2", gzip_body=True)
    assert set(env) == {
        "GATEWAY_INTERFACE",
        "SERVER_PROTOCOL",
        "GIT_PROJECT_ROOT",
        "GIT_HTTP_EXPORT_ALL",
        "PATH_INFO",
        "REQUEST_METHOD",
        "QUERY_STRING",
        "REMOTE_ADDR",
        "REMOTE_USER",
        "CONTENT_TYPE",
        "GIT_PROTOCOL",
        "HTTP_CONTENT_ENCODING",
    }


# Header block ------------------------------------------------------------------------


def test_split_waits_for_the_blank_line() -> None:
    assert split_header_block(b"") is None
    assert split_header_block(b"Content-Type: x\r\n") is None
    assert split_header_block(b"Content-Type: x\r\n\r") is None


@pytest.mark.parametrize(
    ("buffer", "block", "rest"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nPACK", b"A: 1\r\nB: 2", b"PACK"),
        (b"A: 1\nB: 2\n\nPACK", b"A: 1\nB: 2", b"PACK"),
        (b"A: 1\n\r\nbody", b"A: 1", b"body"),
        (b"A: 1\r\n\r\n", b"A: 1", b""),
        # The first blank line ends the block; separators in the body stay in the body.
        (b"A: 1\n\nbin\r\n\r\nary\n\n", b"A: 1", b"bin\r\n\r\nary\n\n"),
        (b"A: 1\r\n\r\nbin\n\nary", b"A: 1", b"bin\n\nary"),
    ],
)
def test_split_header_block(buffer: bytes, block: bytes, rest: bytes) -> None:
    assert split_header_block(buffer) == (block, rest)


def test_split_refuses_an_endless_header_block() -> None:
    assert split_header_block(b"A: " + b"x" * (MAX_CGI_HEADER_BYTES - 10)) is None
    with pytest.raises(CgiHeaderError) as info:
        split_header_block(b"A: " + b"x" * MAX_CGI_HEADER_BYTES)
    assert info.value.status == 502
    # A blank line far beyond the limit does not make a huge block acceptable.
    with pytest.raises(CgiHeaderError):
        split_header_block(b"A: " + b"x" * (2 * MAX_CGI_HEADER_BYTES) + b"\r\n\r\nbody")


def test_parse_typical_http_backend_headers() -> None:
    block = (
        b"Expires: Fri, 01 Jan 1980 00:00:00 GMT\r\n"
        b"Pragma: no-cache\r\n"
        b"Cache-Control: no-cache, max-age=0, must-revalidate\r\n"
        b"Content-Type: application/x-git-upload-pack-advertisement"
    )
    cgi = parse_headers(block)
    assert (cgi.status, cgi.reason) == (200, "OK")
    assert cgi.headers == [
        ("Expires", "Fri, 01 Jan 1980 00:00:00 GMT"),
        ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache, max-age=0, must-revalidate"),
        ("Content-Type", "application/x-git-upload-pack-advertisement"),
    ]


def test_parse_status_and_reason() -> None:
    cgi = parse_headers(b"Status: 403 Forbidden\r\nContent-Type: text/plain")
    assert (cgi.status, cgi.reason) == (403, "Forbidden")
    assert parse_headers(b"status: 404").status == 404
    assert parse_headers(b"Status: 500 Internal Server Error").reason == "Internal Server Error"


def test_parse_drops_headers_not_on_the_allow_list() -> None:
    cgi = parse_headers(
        b"Content-Type: text/plain\nSet-Cookie: a=b\nLocation: http://evil/\n"
        b"Content-Length: 5\nX-Anything: 1\nTransfer-Encoding: chunked"
    )
    assert cgi.headers == [("Content-Type", "text/plain")]


def test_parse_tolerates_blank_lines_and_spacing() -> None:
    cgi = parse_headers(b"\r\nContent-Type:   text/plain  \r\n")
    assert cgi.headers == [("Content-Type", "text/plain")]


@pytest.mark.parametrize(
    "block",
    [
        b"no colon here",
        b": empty name",
        b"Bad Name: x",
        b"Bad\tName: x",
        b"Status: abc",
        b"Status: 99 Too Low",
        b"Status: 600 Too High",
        b"Status: \xb2\xb2\xb2 Superscript digits",
        b"Status:",
        b"Content-Type: a\rInjected: b",
        b"Content-Type: a\x00b",
    ],
)
def test_parse_refuses_malformed_headers(block: bytes) -> None:
    with pytest.raises(CgiHeaderError) as info:
        parse_headers(block)
    assert info.value.status == 502


def test_parse_does_not_split_on_unicode_line_breaks() -> None:
    """Only LF/CRLF end a line: \\x85 or \\x0b inside a value is not a new header."""
    cgi = parse_headers(b"Content-Type: a\x85Status: 500")
    assert cgi.status == 200
    assert cgi.headers == [("Content-Type", "a\x85Status: 500")]
