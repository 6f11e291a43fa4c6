"""The OpenAPI 3.1 document of /api/v1, generated from the route table and the pydantic models.

Every route under /api/v1 appears. A handler decorated with `@doc` (app/web/api/docs.py)
contributes its summary, query parameters, request body and responses; the models become
components/schemas through pydantic's JSON Schema (which is the dialect OpenAPI 3.1 uses).
Routes without `@doc` are listed with a generic answer.
"""

from __future__ import annotations

import copy
import re
import weakref
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app import __version__
from app.schemas.common import MAX_ID, ErrorOut
from app.schemas.users import LOGIN_PATTERN
from app.web.api.common import PREFIX
from app.web.api.docs import ApiDoc, doc_of

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
SKIPPED_METHODS = {"HEAD", "OPTIONS", "*"}
# Path parameters whose form the contract fixes (others are plain strings).
PATH_PARAMS: dict[str, dict[str, Any]] = {
    "owner": {"type": "string", "pattern": LOGIN_PATTERN},
    "username": {"type": "string", "pattern": LOGIN_PATTERN},
    "repo": {"type": "string", "minLength": 1, "maxLength": 104},
    "token_id": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
}
ModelKey = tuple[type[BaseModel], JsonSchemaMode]
# The route table is frozen once the app runs: build its document once (about 50 ms).
_CACHE: weakref.WeakKeyDictionary[web.Application, dict[str, Any]] = weakref.WeakKeyDictionary()


def document_for(app: web.Application, server_url: str) -> dict[str, Any]:
    """The document of a running app, built on first use, with this request's server."""
    cached = _CACHE.get(app)
    if cached is None or not app.router.frozen:
        cached = build_document(app)
        if app.router.frozen:
            _CACHE[app] = cached
    document = copy.copy(cached)
    document["servers"] = [{"url": server_url}]
    return document


def build_document(app: web.Application, server_url: str | None = None) -> dict[str, Any]:
    operations = list(_api_routes(app))
    refs, components = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for path, method, handler in operations:
        op = _operation(path, method, handler, refs)
        op["operationId"] = _unique(f"{method.lower()}_{handler.__name__}", used_ids)
        paths.setdefault(path, {})[method.lower()] = op
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "githost REST API",
            "version": __version__,
            "description": "GitHub REST v3 shapes under /api/v1: pagination with per_page, "
            "page and a Link header; errors as {message, errors[], request_id}.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A JWT from POST /api/v1/auth/token or a personal token",
                },
            },
        },
        "security": [{}, {"basic": []}, {"bearer": []}],
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def _api_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    found = []
    for route in app.router.routes():
        if route.method in SKIPPED_METHODS or route.resource is None:
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if isinstance(path, str) and path.startswith(PREFIX + "/"):
            found.append((_PARAM.sub(r"{\1}", path), route.method, route.handler))
    return found


def _schemas(operations: list[tuple[str, str, Any]]) -> tuple[dict[ModelKey, Any], dict[str, Any]]:
    keys: list[ModelKey] = [(ErrorOut, "serialization")]
    for _, _, handler in operations:
        api_doc = doc_of(handler)
        if api_doc is None:
            continue
        if api_doc.body is not None:
            keys.append((api_doc.body, "validation"))
        if api_doc.response is not None:
            keys.append((api_doc.response, "serialization"))
    unique = list(dict.fromkeys(keys))
    refs, top = models_json_schema(unique, ref_template=REF)
    return {key: refs[key] for key in unique}, dict(top.get("$defs", {}))


def _operation(path: str, method: str, handler: Any, refs: dict[ModelKey, Any]) -> dict[str, Any]:
    api_doc = doc_of(handler)
    params = [_path_param(name) for name in _PARAM.findall(path)]
    if api_doc is None:
        summary = (handler.__doc__ or "").strip().split("\n")[0] or f"{method} {path}"
        return {
            "summary": summary,
            "parameters": params,
            "responses": {"default": {"description": "Not documented in detail"}},
        }
    op: dict[str, Any] = {"summary": api_doc.summary, "tags": list(api_doc.tags)}
    if api_doc.query is not None:
        params += _query_params(api_doc.query)
    op["parameters"] = params
    if api_doc.body is not None:
        required = bool(api_doc.body.model_json_schema().get("required"))
        op["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": refs[(api_doc.body, "validation")]}},
        }
    op["responses"] = _responses(api_doc, refs, has_params=bool(params))
    return op


def _path_param(name: str) -> dict[str, Any]:
    schema = PATH_PARAMS.get(name, {"type": "string", "minLength": 1})
    return {"name": name, "in": "path", "required": True, "schema": dict(schema)}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        prop = dict(prop)
        if "description" in prop:
            param["description"] = prop.pop("description")
        prop.pop("title", None)
        param["schema"] = prop
        params.append(param)
    return params


def _responses(api_doc: ApiDoc, refs: dict[ModelKey, Any], has_params: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {str(api_doc.status): _success(api_doc, refs)}
    error_ref = refs[(ErrorOut, "serialization")]
    statuses = set(api_doc.errors) | {401, 429}
    if api_doc.body is not None:
        statuses |= {400, 413, 422}
    if api_doc.query is not None:
        statuses.add(422)
    if has_params:
        statuses.add(404)
    for status, answer in dict(api_doc.extra.get("responses", {})).items():
        responses[str(status)] = answer
    for status in sorted(statuses):
        if str(status) in responses:
            continue
        reason = HTTPStatus(status).phrase
        if status < 400:
            responses[str(status)] = {"description": reason}
        else:
            responses[str(status)] = {
                "description": reason,
                "content": {"application/json": {"schema": error_ref}},
            }
    return responses


def _success(api_doc: ApiDoc, refs: dict[ModelKey, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": HTTPStatus(api_doc.status).phrase}
    if api_doc.status == 204:
        return answer
    if 300 <= api_doc.status < 400:
        answer["headers"] = {"Location": {"schema": {"type": "string"}}}
        return answer
    content: dict[str, Any] = {}
    if api_doc.response is not None:
        item = refs[(api_doc.response, "serialization")]
        schema = {"type": "array", "items": item} if api_doc.response_is_list else item
        if api_doc.extra.get("response_or_list"):
            schema = {"anyOf": [item, {"type": "array", "items": item}]}
        content["application/json"] = {"schema": schema}
    elif not api_doc.raw_content_types:
        content["application/json"] = {"schema": {}}
    for content_type in api_doc.raw_content_types:
        content[content_type] = {"schema": {}}
    answer["content"] = content
    if api_doc.response_is_list:
        answer["headers"] = {
            "Link": {
                "description": 'Pagination: <URL>; rel="next", ... (prev, next, last, first)',
                "schema": {"type": "string"},
            }
        }
    return answer


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 2
    while candidate in used:
        candidate = f"{name}_{number}"
        number += 1
    used.add(candidate)
    return candidate
