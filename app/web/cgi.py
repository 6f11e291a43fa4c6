"""The CGI side of `git http-backend`: the environment we hand it and the headers it
prints. Pure functions, unit-tested without a process."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import AppError
from app.git.names import GIT_PROTOCOL_RE

SERVICES = ("git-upload-pack", "git-receive-pack")
MAX_CGI_HEADER_BYTES = 64 * 1024
# Only these of http-backend's headers reach the client.
_FORWARDED = {"content-type", "cache-control", "expires", "pragma"}


class CgiHeaderError(AppError):
    """http-backend printed something that is not a CGI header block."""

    status = 502
    default_message = "bad gateway: git http-backend answered badly"


@dataclass
class CgiResponse:
    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)


def backend_env(
    *,
    project_root: str,
    path_info: str,
    method: str,
    service: str,
    remote_user: str | None,
    remote_addr: str,
    content_type: str | None,
    git_protocol: str | None,
    gzip_body: bool,
) -> dict[str, str]:
    """Variables for http-backend, rebuilt from the resolved repository row.

    No CONTENT_LENGTH: http-backend then reads stdin to EOF, which is right for
    chunked bodies and for gzip bodies that we pass through still compressed.
    """
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GIT_PROJECT_ROOT": project_root,
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": path_info,
        "REQUEST_METHOD": method,
        "QUERY_STRING": f"service={service}" if method == "GET" else "",
        "REMOTE_ADDR": remote_addr,
    }
    if remote_user:
        # http-backend enables receive-pack only for an authenticated request.
        env["REMOTE_USER"] = remote_user
    if content_type:
        env["CONTENT_TYPE"] = content_type
    if git_protocol and GIT_PROTOCOL_RE.match(git_protocol):
        env["GIT_PROTOCOL"] = git_protocol
    if gzip_body:
        env["HTTP_CONTENT_ENCODING"] = "gzip"
    return env


def split_header_block(buffer: bytes) -> tuple[bytes, bytes] | None:
    """(header block, rest of body) once the blank line has arrived, else None.

    The first blank line ends the block, whichever line ending it uses: a CRLF CRLF
    further on belongs to the body.
    """
    found = [
        (index, len(separator))
        for separator in (b"\r\n\r\n", b"\n\r\n", b"\n\n")
        if (index := buffer.find(separator, 0, MAX_CGI_HEADER_BYTES + 4)) >= 0
    ]
    if found:
        index, length = min(found)
        return buffer[:index], buffer[index + length :]
    if len(buffer) > MAX_CGI_HEADER_BYTES:
        raise CgiHeaderError("header block too large")
    return None


def parse_headers(block: bytes) -> CgiResponse:
    response = CgiResponse()
    # Lines end in LF or CRLF only (str.splitlines would also split on \x0b, \x85 ...).
    for raw in block.decode("latin-1").split("\n"):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        name, sep, value = raw.partition(":")
        bad_name = not name.strip() or any(c in name for c in " \t")
        if not sep or bad_name or any(c in raw for c in "\r\0"):
            raise CgiHeaderError(f"malformed header line {raw[:80]!r}")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code, _, reason = value.partition(" ")
            if not (code.isascii() and code.isdigit()) or not 100 <= int(code) <= 599:
                raise CgiHeaderError(f"bad status {value[:40]!r}")
            response.status, response.reason = int(code), reason or "OK"
        elif name.lower() in _FORWARDED:
            response.headers.append((name, value))
    return response
