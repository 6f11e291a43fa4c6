"""Smart HTTP without `git http-backend`: what http-backend would do, done in-process.

http-backend is a CGI program that, for a smart request, prints a few headers and runs
`git upload-pack|receive-pack --stateless-rpc [--advertise-refs] .` in the repository.
Starting it costs a second git process per request (about 3 ms of the ~4 ms an
`info/refs` takes here), and a no-op fetch is two requests. The server already does
everything else http-backend does (it resolves and authorizes the repository from the
database, never serves dumb HTTP, passes `GIT_PROTOCOL` after validation), so it runs
the service directly, as git-daemon and node-git-server do. This module holds the
protocol facts, pure and unit-testable:

- `service_args`: the argv (the repository is the working directory, argv says `.`);
- `advertisement_preamble`: the `# service=...` pkt-line and flush that precede a v0/v1
  ref advertisement (protocol v2 has none), as http-backend writes them;
- `service_env`: `GIT_PROTOCOL` (validated), and the committer identity http-backend
  gives receive-pack for reflogs (`user` / `user@http.host`);
- `GzipInflater`: gzip request bodies inflated in bounded pieces with a total cap
  (SECURITY-NOTES rule 14: inflate once, with a cap);
- `CapabilityCache`: protocol v2 `info/refs` answers per repository (see there).
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Hashable, Iterator

from app.errors import AppError, BadRequest, PayloadTooLarge
from app.git.names import GIT_PROTOCOL_RE

SERVICES = ("git-upload-pack", "git-receive-pack")
# The headers http-backend sends with every smart response (hdr_nocache).
NO_CACHE_HEADERS = (
    ("Expires", "Fri, 01 Jan 1980 00:00:00 GMT"),
    ("Pragma", "no-cache"),
    ("Cache-Control", "no-cache, max-age=0, must-revalidate"),
)


class GitServiceFailed(AppError):
    """git exited with an error before writing anything (logged with its stderr)."""

    status = 502
    default_message = "git failed to serve the request"


def service_args(service: str, *, advertise: bool) -> list[str]:
    """`upload-pack --stateless-rpc [--advertise-refs] .` (cwd is the repository)."""
    if service not in SERVICES:
        raise ValueError(f"not a smart HTTP service: {service!r}")
    args = [service.removeprefix("git-"), "--stateless-rpc"]
    if advertise:
        args.append("--advertise-refs")
    args.append(".")
    return args


def content_type(service: str, *, advertise: bool) -> str:
    return f"application/x-{service}-{'advertisement' if advertise else 'result'}"


def protocol_version(git_protocol: str | None) -> int:
    """The version a server speaks for this `Git-Protocol` value (git's
    determine_protocol_version_server: the highest `version=N` among `:`-separated keys)."""
    version = 0
    for item in (git_protocol or "").split(":"):
        key, _, value = item.partition("=")
        if key == "version" and value in ("0", "1", "2"):
            version = max(version, int(value))
    return version


def pkt_line(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


def advertisement_preamble(service: str, git_protocol: str | None) -> bytes:
    """What http-backend writes before the service's own advertisement."""
    if protocol_version(git_protocol) == 2:
        return b""
    return pkt_line(f"# service={service}\n") + b"0000"


def valid_git_protocol(value: str | None) -> str | None:
    return value if value and GIT_PROTOCOL_RE.match(value) else None


def service_env(
    *, git_protocol: str | None, remote_user: str | None, remote_addr: str
) -> dict[str, str]:
    """Environment for the service, on top of the server's allow-listed git environment."""
    user = remote_user or "anonymous"
    host = remote_addr or "(none)"
    env = {
        "REMOTE_ADDR": host,
        "GIT_COMMITTER_NAME": user,
        "GIT_COMMITTER_EMAIL": f"{user}@http.{host}",
    }
    if remote_user:
        env["REMOTE_USER"] = remote_user
    protocol = valid_git_protocol(git_protocol)
    if protocol:
        env["GIT_PROTOCOL"] = protocol
    return env


class GzipInflater:
    """Inflates a gzip stream piece by piece: no output piece is larger than `piece`
    bytes, the total never exceeds `limit` (PayloadTooLarge), bad data is BadRequest."""

    def __init__(self, limit: int, piece: int = 256 * 1024):
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._limit = limit
        self._piece = piece
        self.total = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._inflater.eof:
            try:
                out = self._inflater.decompress(data, self._piece)
            except zlib.error as exc:
                raise BadRequest("request body is not valid gzip") from exc
            data = self._inflater.unconsumed_tail
            if out:
                self.total += len(out)
                if self.total > self._limit:
                    raise PayloadTooLarge("inflated request body exceeds the limit")
                yield out

    def finish(self) -> None:
        if not self._inflater.eof:
            raise BadRequest("request body ended inside the gzip stream")


class CapabilityCache:
    """Protocol v2 `GET info/refs?service=git-upload-pack` answers, by repository
    (a key such as `(id, created_at)`: ids of deleted rows may come back).

    In v2 that answer lists capabilities only, no refs: it depends on the git binary,
    the server-wide configuration (the same for every process) and the repository's
    object format, none of which a user can change. Every fetch and clone starts with
    it, so answering from memory saves one git process per fetch. Access is still
    checked on every request before the cache is consulted; entries die with the
    process and are dropped least-recently-used past `max_entries`.
    """

    def __init__(self, max_entries: int = 4096):
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._max = max_entries

    def get(self, repo_id: Hashable) -> bytes | None:
        value = self._entries.get(repo_id)
        if value is not None:
            self._entries.move_to_end(repo_id)
        return value

    def put(self, repo_id: Hashable, advertisement: bytes) -> None:
        """Keep only what looks like a complete v2 capability advertisement."""
        if not advertisement.startswith(b"000eversion 2\n") or not advertisement.endswith(b"0000"):
            return
        self._entries[repo_id] = advertisement
        self._entries.move_to_end(repo_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, repo_id: Hashable) -> None:
        self._entries.pop(repo_id, None)
