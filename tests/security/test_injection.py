"""Argument injection into git: refs, paths and shas that begin with `-` reach no git
argv as options (SECURITY-NOTES rule 4), through every API route that takes one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="module")

MARKER = Path("/tmp/githost-security-marker")
VALUES = {
    "output": f"--output={MARKER}",
    "upload-pack": f"--upload-pack=touch%20{MARKER}",
    "exec": f"--exec=touch%20{MARKER}",
    "short-n": "-n1",
    "help": "--help",
    "all": "--all",
    "config": "-c%20core.pager=touch",
}
ROUTES = {
    "commit": "/api/v1/repos/alice/pub/commits/{x}",
    "commits-sha": "/api/v1/repos/alice/pub/commits?sha={x}",
    "commits-path": "/api/v1/repos/alice/pub/commits?path={x}",
    "compare": "/api/v1/repos/alice/pub/compare/main...{x}",
    "contents-ref": "/api/v1/repos/alice/pub/contents/README.md?ref={x}",
    "contents-path": "/api/v1/repos/alice/pub/contents/{x}",
    "tree": "/api/v1/repos/alice/pub/git/trees/{x}",
    "branch": "/api/v1/repos/alice/pub/branches/{x}",
    "tarball": "/api/v1/repos/alice/pub/tarball/{x}",
}


@pytest.mark.parametrize("route", list(ROUTES.values()), ids=list(ROUTES))
@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
async def test_option_lookalikes_are_data(shared: World, route: str, value: str) -> None:
    MARKER.unlink(missing_ok=True)
    reply = shared.safe(await shared.request("GET", route.format(x=value)))
    # A path filter that matches nothing is a valid (empty) history; everything else
    # is not found or invalid. Never git's usage text, never a side effect.
    assert reply.status in (200, 302, 400, 404, 422), (reply.status, reply.text[:300])
    assert b"usage: git" not in reply.body
    if reply.status == 302:  # archive: follow it, the stream must not run git with it
        location = reply.headers["Location"].removeprefix(shared.server.url)
        shared.safe(await shared.request("GET", location))
    assert not MARKER.exists()
    await shared.intact()
