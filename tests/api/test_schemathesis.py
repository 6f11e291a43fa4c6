"""Schemathesis against the live server and its own /api/v1/openapi.json.

The server is populated (users, repositories with pushed history, a collaborator) and
schemathesis runs as a CLI subprocess (the test awaits it, so this loop keeps serving):
every answer must be free of 5xx and conform to the document (status codes, content types,
headers, JSON Schemas of the bodies). A fixed seed and a bounded number of examples keep it
under a minute.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from tests.api.resources_world import World, world
from tests.helpers import PASSWORD, make_settings

__all__ = ["world"]
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)
# Path parameter values that name real things in the populated server.
EXAMPLES = {
    "owner": "alice",
    "repo": "public",
    "username": "bob",
    "branch": "main",
    "ref": "main",
    "sha": "main",
    "path": "README.md",
    "basehead": "main...feature",
    "token_id": 1,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Generous limits: the run sends thousands of requests, some with wrong passwords."""
    return make_settings(
        tmp_path,
        rate_limit="1000000/hour",
        rate_limit_anonymous="1000000/hour",
        auth_failure_limit="1000000/minute",
    )


def with_examples(document: dict[str, Any]) -> dict[str, Any]:
    for operations in document["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", ()):
                if param["in"] == "path" and param["name"] in EXAMPLES:
                    param["example"] = EXAMPLES[param["name"]]
    return document


async def run_schemathesis(world: World, tmp_path: Path, *extra: str) -> tuple[int, str]:
    reply = await world.api.get("/api/v1/openapi.json")
    assert reply.status == 200
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(with_examples(reply.json)))
    argv = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(schema_file),
        "--url",
        world.server.url,
        "--checks",
        CHECKS,
        "--max-examples",
        "8",
        "--seed",
        "20261124",
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        *extra,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_schemathesis_authenticated(world: World, tmp_path: Path) -> None:
    code, output = await run_schemathesis(world, tmp_path, "--auth", f"alice:{PASSWORD}")
    assert code == 0, output[-20000:]


async def test_schemathesis_anonymous(world: World, tmp_path: Path) -> None:
    code, output = await run_schemathesis(world, tmp_path, "--mode", "positive")
    assert code == 0, output[-20000:]
