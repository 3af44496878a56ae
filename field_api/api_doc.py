"""What the HTTP surface says about itself: the bearer scheme in the OpenAPI, OPTIONS and 405.

- ``components.securitySchemes.bearer`` (HTTP bearer) and ``security`` on every operation that
  authenticates (its dependencies reach :func:`field_api.deps.get_current_user`, or a function
  marked :func:`uses_bearer`), so a client or a fuzzer can authenticate from the document alone.
- a request body a route reads itself (a streamed multipart upload, tus's raw bytes) is
  documented all the same: :func:`form_body` and :func:`raw_body` give the route's
  ``openapi_extra``, so every operation that takes a body has a ``requestBody`` with a schema.
- every operation's success answer has an example: a response model's schema gets the
  ``examples`` of ``field_api/api_examples.json`` (``schemas``: component name -> one answer,
  taken from the demo data) unless the model declares its own, and an answer without a model
  (CSV, PEM, a report's rows) gets its ``example`` there (``responses``: "METHOD /path" ->
  status -> media type -> example). tests/field_api/test_openapi_docs.py checks that every
  example is valid for its schema and that none is missing.
- OPTIONS on any route path answers 204 with an ``Allow`` header listing every method the path
  supports (a route's own OPTIONS handler, such as tus's, still answers itself), and a 405 for a
  wrong method carries the same complete ``Allow`` (Starlette's names only the first route).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from field_api.deps import get_current_user

SCHEME = "bearer"
_MARK = "__fieldops_bearer__"
F = TypeVar("F", bound=Callable[..., Any])


def uses_bearer(fn: F) -> F:
    """Mark a dependency that authenticates the bearer token itself (not via CurrentUser)."""
    setattr(fn, _MARK, True)
    return fn


_FORM_MODEL = "x-fieldops-form-model"
_form_models: dict[str, type[BaseModel]] = {}


def form_body(model: type[BaseModel], *, files: dict[str, str]) -> dict[str, Any]:
    """``openapi_extra`` of a route that parses its multipart form itself: the ``requestBody``
    is a ``multipart/form-data`` object of ``model``'s fields (validated by the route with that
    model) plus the file parts ``files`` (name -> description, each required)."""
    _form_models[model.__name__] = model
    file_parts = {
        name: {"type": "string", "format": "binary", "description": text}
        for name, text in files.items()
    }
    media: dict[str, Any] = {
        "schema": {"type": "object", _FORM_MODEL: model.__name__, "properties": file_parts},
    }
    return {"requestBody": {"required": True, "content": {"multipart/form-data": media}}}


def raw_body(media_type: str, description: str) -> dict[str, Any]:
    """``openapi_extra`` of a route that streams its raw body itself (bytes of ``media_type``)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    }


def _expand_form_models(schema: dict[str, Any]) -> None:
    """The form fields of :func:`form_body` bodies, from their model (its enums as components)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                body = media.get("schema", {})
                name = body.pop(_FORM_MODEL, None)
                if name is None:
                    continue
                fields = _form_models[name].model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
                for def_name, definition in fields.pop("$defs", {}).items():
                    components.setdefault(def_name, definition)
                files = list(body["properties"])
                body["properties"] = {**fields.get("properties", {}), **body["properties"]}
                body["required"] = [*fields.get("required", []), *files]
                if "description" in fields:
                    body["description"] = fields["description"]


EXAMPLES_FILE = Path(__file__).with_name("api_examples.json")


def _add_examples(schema: dict[str, Any]) -> None:
    """Examples of the success answers from :data:`EXAMPLES_FILE` (a model's own ones win)."""
    examples = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    components = schema.get("components", {}).get("schemas", {})
    for name, example in examples["schemas"].items():
        component = components.get(name)
        if component is not None and "examples" not in component:
            component["examples"] = [example]
    paths = schema.get("paths", {})
    for key, statuses in examples["responses"].items():
        method, path = key.split(" ", 1)
        operation = paths.get(path, {}).get(method.lower())
        if operation is None:
            continue
        for status, media_types in statuses.items():
            content = operation.get("responses", {}).get(status, {}).get("content", {})
            for media_type, example in media_types.items():
                if media_type in content:
                    content[media_type].setdefault("example", example)


def _authenticates(dependant: Dependant) -> bool:
    for dep in dependant.dependencies:
        if dep.call is get_current_user or getattr(dep.call, _MARK, False):
            return True
        if _authenticates(dep):
            return True
    return False


def _keep_declared_content(operation: dict[str, Any], route: APIRoute) -> None:
    """Media types a route declares in ``responses=`` (an HTML 404 page) stay documented."""
    for status, declared in route.responses.items():
        content = declared.get("content")
        entry = operation.get("responses", {}).get(str(status))
        if content and entry is not None:
            entry.setdefault("content", {}).update(content)


def _openapi_with_security(app: FastAPI) -> Callable[[], dict[str, Any]]:
    base = app.openapi  # whatever documented the schema before (errors, ...): wrapped, kept

    def openapi() -> dict[str, Any]:
        schema = base()
        _expand_form_models(schema)
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: Authorization: Bearer <token>.",
        }
        paths = schema.get("paths", {})
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if not (isinstance(route, APIRoute) and route.include_in_schema):
                continue
            secured = _authenticates(route.dependant)
            for method in context.methods or ():
                operation = paths.get(context.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                if secured:
                    operation["security"] = [{SCHEME: []}]
                _keep_declared_content(operation, route)
        _add_examples(schema)  # after the declared media types are in
        return schema

    return openapi


def _route_table(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every route, included routers flattened."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] = []
    for context in iter_route_contexts(app.routes):
        if context.methods and context.path:
            regex, _, _ = compile_path(context.path)
            table.append((regex, frozenset(m.upper() for m in context.methods)))
    return table


class AllowMiddleware:
    """OPTIONS answered with the complete ``Allow``; every 405 given the complete ``Allow``."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._table: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _allowed(self, path: str) -> tuple[set[str], bool]:
        """Methods of every route matching ``path``, and whether one handles OPTIONS itself."""
        if self._table is None:
            self._table = _route_table(self.fastapi_app)
        methods: set[str] = set()
        for regex, route_methods in self._table:
            if regex.match(path):
                methods |= route_methods
        explicit_options = "OPTIONS" in methods
        if methods:
            methods.add("OPTIONS")
        return methods, explicit_options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        methods, explicit_options = self._allowed(scope["path"])
        if not methods:
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(methods))
        if scope["method"] == "OPTIONS" and not explicit_options:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"allow", allow.encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        options = scope["method"] == "OPTIONS"

        async def send_with_allow(message: Message) -> None:
            status = message.get("status", 0) if message["type"] == "http.response.start" else 0
            if status == 405 or (options and 200 <= status < 300):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allow.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_allow)


def install(app: FastAPI) -> None:
    """Declare the bearer scheme in the OpenAPI and answer OPTIONS/405 with a complete Allow."""
    app.openapi = _openapi_with_security(app)  # type: ignore[method-assign]
    app.add_middleware(AllowMiddleware, fastapi_app=app)
