"""What the HTTP surface says about itself: the bearer scheme in the OpenAPI, OPTIONS and 405.

- ``components.securitySchemes.bearer`` (HTTP bearer) and ``security`` on every operation that
  authenticates (its dependencies reach :func:`field_api.deps.get_current_user`, or a function
  marked :func:`uses_bearer`), so a client or a fuzzer can authenticate from the document alone.
- OPTIONS on any route path answers 204 with an ``Allow`` header listing every method the path
  supports (a route's own OPTIONS handler, such as tus's, still answers itself), and a 405 for a
  wrong method carries the same complete ``Allow`` (Starlette's names only the first route).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
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
