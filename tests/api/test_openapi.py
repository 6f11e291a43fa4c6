"""The OpenAPI document (generated from the route table), and bad input on every route:
names, huge per_page, wrong types, malformed and deep JSON - never a 500."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs

from app.web.openapi import SKIPPED_METHODS
from tests.api.resources_world import World, world

__all__ = ["world"]
EXAMPLES = {
    "owner": "alice",
    "repo": "public",
    "username": "bob",
    "branch": "main",
    "ref": "main",
    "sha": "main",
    "path": "README.md",
    "basehead": "main...feature",
    "token_id": "1",
    "name": "main.tar.gz",
}
BAD_SEGMENTS = ("..", "%2e%2e", "-x", "x%00y", "a" * 300, "%ff%fe", "%0d%0a", "~", "x.git.git")
MY_BODIES = {
    ("post", "/api/v1/auth/token"): {"username": 5, "password": ["x"]},
    ("post", "/api/v1/user/repos"): {"name": 5, "private": "yes", "auto_init": 1},
    ("patch", "/api/v1/repos/{owner}/{repo}"): {"name": [], "private": "no"},
    ("put", "/api/v1/repos/{owner}/{repo}/collaborators/{username}"): {"permission": 7},
    ("post", "/api/v1/user/tokens"): {"name": {}, "scopes": 5},
    ("post", "/api/v1/admin/users"): {"login": 1, "admin": "yes"},
}


async def document(world: World) -> dict[str, Any]:
    reply = await world.api.get("/api/v1/openapi.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    return dict(reply.json)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "x"), path)


async def test_document_lists_every_api_route(world: World) -> None:
    doc = await document(world)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": world.server.url}]
    for route in world.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if not path.startswith("/api/v1/") or route.method in SKIPPED_METHODS:
            continue
        path = re.sub(r"\{([^}:]+)(?::[^}]*)?\}", r"{\1}", path)
        assert route.method.lower() in doc["paths"][path], (route.method, path)
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))


async def test_schemas_and_refs(world: World) -> None:
    doc = await document(world)
    schemas = doc["components"]["schemas"]
    for name, schema in schemas.items():
        assert jsonschema_rs.meta.is_valid(schema), name
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in schemas, ref
    create = doc["paths"]["/api/v1/user/repos"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RepoCreate"
    }
    assert create["requestBody"]["required"] is True
    assert "201" in create["responses"] and "422" in create["responses"]
    body = schemas["RepoCreate"]
    assert body["properties"]["private"]["anyOf"][0]["type"] == "boolean"
    listing = doc["paths"]["/api/v1/users"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {"since", "per_page"}
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert "Link" in listing["responses"]["200"]["headers"]
    delete = doc["paths"]["/api/v1/repos/{owner}/{repo}"]["delete"]
    assert "content" not in delete["responses"]["204"]
    repo = schemas["RepoOut"]
    for field in ("id", "node_id", "full_name", "private", "owner", "clone_url", "permissions"):
        assert field in repo["required"], field
    # the answer itself validates against the schema it documents
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/RepoOut", "components": {"schemas": schemas}}
    )
    reply = await world.api.get("/api/v1/repos/alice/public", token=world.tokens["alice"])
    validator.validate(reply.json)


async def test_bad_path_names_everywhere(world: World) -> None:
    doc = await document(world)
    for method, path, _ in operations(doc):
        if "{" not in path:
            continue
        for name in re.findall(r"\{([^}]+)\}", path):
            for bad in BAD_SEGMENTS:
                url = fill(path, {**EXAMPLES, name: bad})
                reply = await world.api.call(
                    method.upper(), url, token=world.tokens["alice"], json_body={}
                )
                assert reply.status < 500, (method, url, reply.status, reply.text[:300])
                if name in ("owner", "repo", "username") and reply.status >= 400:
                    assert reply.json["message"], (method, url)


async def test_query_values_everywhere(world: World) -> None:
    doc = await document(world)
    queries = (
        "per_page=100000000000000000000000",
        "per_page=-1",
        "per_page=abc",
        "page=0",
        "page=99999999999999999999",
        "since=-5",
        "since=99999999999999999999999",
        "per_page=5&per_page=abc",
        "type=%00",
        "sort=%ff",
    )
    for method, path, _ in operations(doc):
        if method != "get":
            continue
        for query in queries:
            url = fill(path, EXAMPLES) + "?" + query
            reply = await world.api.get(url, token=world.tokens["alice"])
            assert reply.status < 500, (url, reply.status, reply.text[:300])
    huge = await world.api.get(
        "/api/v1/user/repos?per_page=100000000000", token=world.tokens["alice"]
    )
    assert huge.status == 200
    for bad in ("per_page=abc", "page=0", "type=nope", "sort=1", "direction=up"):
        reply = await world.api.get(f"/api/v1/user/repos?{bad}", token=world.tokens["alice"])
        assert reply.status == 422, bad
        field = bad.split("=")[0]
        assert [e["field"] for e in reply.json["errors"]] == [field], bad


async def test_bodies_everywhere(world: World) -> None:
    doc = await document(world)
    deep = b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    shallow_but_deep = json.dumps(
        {"name": "x", "d": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    )
    bodies: list[tuple[str, bytes | str, int | None]] = [
        ("malformed", "{not json", 400),
        ("truncated", '{"name": "x"', 400),
        ("not an object", "[1, 2]", 400),
        ("a string", '"x"', 400),
        ("deep", deep, 400),
        ("nested too deeply", shallow_but_deep, 400),
        ("not utf-8", b'{"name": "\xff\xfe"}', 400),
        ("nan", '{"name": NaN}', None),
    ]
    for method, path, op in operations(doc):
        if "requestBody" not in op:
            continue
        url = fill(path, EXAMPLES)
        token = world.tokens["root"]
        for label, data, expected in bodies:
            reply = await world.api.call(
                method.upper(),
                url,
                token=token,
                data=data,
                headers={"Content-Type": "application/json"},
            )
            assert reply.status < 500, (label, method, url, reply.text[:300])
            if expected is not None:
                assert reply.status == expected, (label, method, url, reply.status, reply.text)
                assert reply.json["message"].startswith("Problems parsing JSON")
        wrong = MY_BODIES.get((method, path))
        if wrong is None:
            continue
        reply = await world.api.call(method.upper(), url, token=token, json_body=wrong)
        assert reply.status == 422, (method, path, reply.text)
        fields = {e["field"] for e in reply.json["errors"]}
        assert fields == set(wrong), (method, path, fields)
        assert all(e["code"] == "invalid" for e in reply.json["errors"])


async def test_too_large_body(world: World) -> None:
    data = json.dumps({"name": "big", "description": "x" * (2 * 1024 * 1024)})
    reply = await world.api.call(
        "POST",
        "/api/v1/user/repos",
        token=world.tokens["alice"],
        data=data,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 413
    assert (await world.api.get("/api/v1/repos/alice/big")).status == 404


def test_routes_without_doc_still_appear() -> None:
    from aiohttp import web

    from app.web.openapi import build_document

    async def plain(request: web.Request) -> web.Response:
        """A plain handler."""
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/v1/things/{thing_id:[0-9]+}", plain)
    app.router.add_get("/not/api", plain)
    doc = build_document(app)
    assert list(doc["paths"]) == ["/api/v1/things/{thing_id}"]
    op = doc["paths"]["/api/v1/things/{thing_id}"]["get"]
    assert op["summary"] == "A plain handler."
    assert op["parameters"][0]["name"] == "thing_id" and op["parameters"][0]["in"] == "path"
    assert "default" in op["responses"]
    assert "head" not in doc["paths"]["/api/v1/things/{thing_id}"]
