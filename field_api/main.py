"""The application factory: the only place that mounts routers."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from field_api import api_doc, devtools, logs, paging, readiness, security_headers, wiring
from field_api.audit import keys as audit_keys
from field_api.config import Settings, get_settings
from field_api.contracts.pdf import warn_if_font_fallback
from field_api.db import is_busy_error, make_engine, make_session_factory
from field_api.deps import get_current_user
from field_api.error_codes import field_errors_sentence
from field_api.errors import DomainError, ErrorBody, FieldError, ServiceUnavailable, error_body
from field_api.idempotency.middleware import IdempotencyMiddleware
from field_api.keepalive import KeepAliveLimit
from field_api.language import language_of
from field_api.sms import crypto as sms_crypto
from field_api.workers import Wiring
from field_api.workers import lifespan as worker_lifespan

log = logging.getLogger("field_api")

HTTP_ERROR_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMedia",
    422: "ValidationFailed",
    429: "TooManyRequests",
}
# Framework (routing) errors: their stable codes (field_api.error_codes); others "request.error".
HTTP_ERROR_CODES = {
    404: "route.not_found",
    405: "route.method_not_allowed",
    413: "request.too_large",
}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        body = exc.body(language_of(request))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        language = language_of(request)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                error_body(
                    "BadRequest", "request.malformed_json", "malformed JSON body",
                    language=language,
                ),
                status_code=400,
            )
        detail = [
            {
                "loc": list(e.get("loc", ())),
                "type": str(e.get("type", "")),
                "msg": str(e.get("msg", "")),
            }
            for e in errors
        ]
        body = error_body("ValidationFailed", "request.invalid", detail, {"errors": detail})
        body["detail"] = field_errors_sentence(detail, language)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = HTTP_ERROR_NAMES.get(exc.status_code, "HTTPError")
        code = HTTP_ERROR_CODES.get(exc.status_code, "request.error")
        params: dict[str, Any] = {}
        if exc.status_code == 405:
            params = {"method": request.method}
        elif code == "request.error":
            params = {"status": exc.status_code}
        return JSONResponse(
            error_body(name, code, exc.detail, params, language=language_of(request)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _database_busy(request: Request, exc: OperationalError) -> JSONResponse:
        if not is_busy_error(exc):
            raise exc  # any other database failure stays a logged 500 (below)
        log.warning("database busy, answered 503: %s", type(exc.orig).__name__)
        busy = ServiceUnavailable(
            "the database is busy; retry shortly",
            code="server.busy",
            params={"retry_after_s": 1},
            headers={"Retry-After": "1"},
        )
        return JSONResponse(
            busy.body(language_of(request)), status_code=busy.status_code, headers=busy.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, OperationalError) and is_busy_error(exc):
            return await _database_busy(request, exc)  # raised by a middleware, not a route
        log.exception("unhandled error: %s", type(exc).__name__)
        return JSONResponse(
            error_body(
                "InternalError", "server.internal", "unexpected server error",
                language=language_of(request),
            ),
            status_code=500,
        )


ERROR_RESPONSES = {
    400: "Bad request: malformed JSON, a bad header or multipart body.",
    401: "Missing, unknown or revoked bearer token.",
    403: "The caller's role or crew may not do this.",
    404: "The resource (or route) does not exist.",
    408: "The request body went idle before it was complete; the connection is closed.",
    409: "Conflicts with the current state (or an Idempotency-Key in use).",
    412: "A precondition header is wrong (tus: Tus-Resumable).",
    413: "The request body or file exceeds its limit.",
    415: "Unsupported content type.",
    422: "Invalid input: request.invalid (params.errors lists the fields) or a domain rule.",
    500: "Unexpected server error (server.internal).",
    503: "Busy or unavailable; retry (server.busy, with Retry-After).",
}
ERROR_BODY_REF = {"$ref": "#/components/schemas/ErrorBody"}
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def _needs_user(dependant: Dependant) -> bool:
    return dependant.call is get_current_user or any(_needs_user(d) for d in dependant.dependencies)


def _error_statuses(route: APIRoute | None, path: str, method: str, op: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer (documented with ErrorBody)."""
    statuses = {500, 503}
    if op.get("security") or (route is not None and _needs_user(route.dependant)):
        statuses |= {401, 403, 404, 409, 422}
    if "{" in path:
        statuses |= {404, 422}
    if op.get("parameters") or op.get("requestBody"):
        statuses.add(422)
    if method in _WRITE_METHODS:
        statuses |= {400, 409, 413, 422}  # malformed JSON, Idempotency-Key, body size
    content = op.get("requestBody", {}).get("content", {})
    if method in _WRITE_METHODS and ("/media" in path or "multipart/form-data" in content):
        statuses |= {400, 408, 413, 415}  # 408: an upload body that goes idle
    if "/media/uploads" in path:
        statuses.add(412)
    return statuses


def _document_errors(app: FastAPI) -> None:
    """Document every error response once: the shared ``ErrorBody`` component.

    Replaces FastAPI's own ``HTTPValidationError`` (not what the service sends) and gives every
    operation its error statuses (at least 401/403/404/409/422 on every authenticated route).
    """
    base = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorBody" in components:
            return schema  # already documented (base caches the same dict)
        ref = "#/components/schemas/{model}"
        components["ErrorBody"] = ErrorBody.model_json_schema(ref_template=ref)
        components["FieldError"] = FieldError.model_json_schema(ref_template=ref)
        routes = {  # included routers are flattened by FastAPI's own walk
            (c.path_format, m.lower()): c.original_route
            for c in iter_route_contexts(app.routes)
            if isinstance(c.original_route, APIRoute)
            for m in (c.methods or ())
        }
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                responses = op["responses"]
                wanted = _error_statuses(routes.get((path, method)), path, method, op)
                wanted |= {int(s) for s in responses if s.isdigit() and int(s) >= 400}
                for status in sorted(wanted):
                    entry = responses.setdefault(
                        str(status), {"description": ERROR_RESPONSES.get(status, "Error")}
                    )
                    if status == 422 and "HTTPValidationError" in json.dumps(entry):
                        entry["description"] = ERROR_RESPONSES[422]
                    # JSON errors are ErrorBody; a page's declared HTML error (text/html) stays
                    content = entry.setdefault("content", {})
                    content["application/json"] = {"schema": dict(ERROR_BODY_REF)}
        # Webhooks are the receiver's operations: FastAPI's own 422 for them says nothing true
        for item in schema.get("webhooks", {}).values():
            for op in item.values():
                responses = op.get("responses", {}) if isinstance(op, dict) else {}
                generated = [
                    s for s, e in responses.items() if "HTTPValidationError" in json.dumps(e)
                ]
                for status in generated:
                    del responses[status]
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None, *, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment).

    ``session_factory`` lets tests bind the app to their own connection.
    """
    settings = settings or get_settings()
    wiring.import_all_models()
    wiring.install_hooks()
    audit_keys.install(settings)
    sms_crypto.cipher_for(settings)  # the SMS key: created in development, required in production
    logs.install()  # whatever launches the app, its log records lose tokens and codes
    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings.database_url))
    engine = session_factory.kw["bind"]

    app = FastAPI(
        title="fieldops",
        version="0.1.0",
        description="Field operations of a power distribution company: one-visit low-voltage "
        "connections, drone inspection findings, planners' reviews.",
        # the development job worker thread (field_api.workers)
        lifespan=worker_lifespan(Wiring(wiring.job_handlers, wiring.periodic_jobs)),
        docs_url=None,  # /docs is served from vendored files by field_api.web (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    _install_error_handlers(app)
    api_doc.install(app)  # bearer scheme in the OpenAPI; OPTIONS and 405 with a complete Allow
    _document_errors(app)  # after api_doc: an operation with "security" is authenticated
    paging.install(app)  # X-Total-Count and Link headers of the paged lists
    app.add_middleware(IdempotencyMiddleware, max_body_bytes=settings.max_json_body_bytes)
    app.add_middleware(KeepAliveLimit, max_requests=settings.keepalive_requests)
    security_headers.install(app)  # outermost: every answer (a 500 too) gets the headers

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness check."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["meta"])
    def readyz() -> dict[str, Any]:
        """Readiness check: the database answers and the file store takes a write (else 503,
        code server.not_ready naming the failing checks)."""
        checks = readiness.checks(app.state.settings, app.state.session_factory)
        failing = [name for name, state in checks.items() if state != readiness.OK]
        if failing:
            raise ServiceUnavailable(
                f"not ready: {', '.join(failing)}",
                code="server.not_ready",
                params={"failing": ", ".join(failing), "checks": checks},
                headers={"Retry-After": "5", "Cache-Control": "no-store"},
            )
        return {"status": "ready", "checks": checks}

    for router in wiring.routers():  # every mounted router, by name, in field_api/wiring.py
        app.include_router(router)
    from field_api.tracking.endpoints import webhooks  # what subscribers receive (OpenAPI)

    app.webhooks.include_router(webhooks)
    devtools.install(app, settings)  # GET /dev/sms and the SMS outbox, never in production
    warn_if_font_fallback(settings.contracts.font_path)  # one warning at start-up
    return app
