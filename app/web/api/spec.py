"""GET /api/v1/openapi.json: the OpenAPI 3.1 document, built from the live route table."""

from __future__ import annotations

from aiohttp import web

from app.web.api.common import PREFIX, base_url, json_response
from app.web.api.docs import doc
from app.web.openapi import document_for

routes = web.RouteTableDef()


@routes.get(f"{PREFIX}/openapi.json")
@doc(summary="This OpenAPI 3.1 document", tags=["meta"], errors=())
async def openapi_document(request: web.Request) -> web.Response:
    return json_response(document_for(request.app, base_url(request)))
