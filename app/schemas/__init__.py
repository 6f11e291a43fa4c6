"""Wire models (pydantic): API request bodies, queries and responses, one module per area.

No behaviour here: the web layer validates with them and the OpenAPI builder turns them
into JSON Schema (app/web/openapi.py).
"""
