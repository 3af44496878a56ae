"""The application factory: the only place that mounts routers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from field_api import logs
from field_api.audit import keys as audit_keys
from field_api.config import Settings, get_settings
from field_api.db import (
    import_all_models,
    import_slice_modules,
    install_hooks,
    is_busy_error,
    make_engine,
    make_session_factory,
)
from field_api.errors import DomainError, ServiceUnavailable
from field_api.idempotency.middleware import IdempotencyMiddleware
from field_api.maintenance import lifespan as maintenance_lifespan
from field_api.security_headers import SecurityHeadersMiddleware

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


# NOTE to slice authors: routers are discovered — every field_api.<slice>.endpoints.router is
# mounted (plus an optional ``extra_routers`` list). Nothing to add here.
def _routers() -> list[Any]:
    """Every slice's ``endpoints.router`` (and ``endpoints.extra_routers``), in slice order."""
    routers: list[Any] = []
    for module in import_slice_modules("endpoints"):
        routers.append(module.router)
        routers.extend(getattr(module, "extra_routers", ()))
    return routers


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                {"error": "BadRequest", "detail": "malformed JSON body"}, status_code=400
            )
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in errors
        ]
        return JSONResponse({"error": "ValidationFailed", "detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = HTTP_ERROR_NAMES.get(exc.status_code, "HTTPError")
        return JSONResponse(
            {"error": name, "detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _database_busy(_: Request, exc: OperationalError) -> JSONResponse:
        if not is_busy_error(exc):
            raise exc  # any other database failure stays a logged 500 (below)
        log.warning("database busy, answered 503: %s", type(exc.orig).__name__)
        busy = ServiceUnavailable(
            "the database is busy; retry shortly", headers={"Retry-After": "1"}
        )
        return JSONResponse(busy.body(), status_code=busy.status_code, headers=busy.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, OperationalError) and is_busy_error(exc):
            return await _database_busy(request, exc)  # raised by a middleware, not a route
        log.exception("unhandled error: %s", type(exc).__name__)
        return JSONResponse(
            {"error": "InternalError", "detail": "unexpected server error"}, status_code=500
        )


def create_app(
    settings: Settings | None = None, *, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment).

    ``session_factory`` lets tests bind the app to their own connection.
    """
    settings = settings or get_settings()
    import_all_models()
    install_hooks()
    audit_keys.install(settings)
    logs.install()  # whatever launches the app, its log records lose tokens and codes
    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings.database_url))
    engine = session_factory.kw["bind"]

    app = FastAPI(
        title="fieldops",
        version="0.1.0",
        description="Field operations of a power distribution company: one-visit low-voltage "
        "connections, drone inspection findings, planners' reviews.",
        lifespan=maintenance_lifespan,  # the maintenance runner (field_api.maintenance)
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    _install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware, max_body_bytes=settings.max_json_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: every answer gets the headers

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness check."""
        return {"status": "ok"}

    for router in _routers():
        app.include_router(router)
    return app
