"""Security headers on every response: one pure ASGI middleware, installed by ``create_app``.

Every page, file and API answer gets:

- ``Content-Security-Policy``: scripts, styles, images and connections from this origin only;
  no inline script, no inline style, no ``eval``, no plugins, no ``<base>`` tricks, and
  ``frame-ancestors 'none'`` (with ``X-Frame-Options: DENY`` for older browsers);
- ``X-Content-Type-Options: nosniff`` (an evidence file is never sniffed into HTML or script);
- ``Referrer-Policy: no-referrer`` (a tracking link's token never leaks in a Referer);
- ``Cross-Origin-Opener-Policy: same-origin``.

The interactive API docs (``/docs``) are Swagger UI vendored from npm and started from a script
file (``field_api.web``), so they run under the same strict policy; FastAPI's CDN-loaded docs
pages are switched off. ``/redoc`` (ReDoc, vendored too) builds its styles at run time in
``<style>`` elements (styled-components): that one page sends its own policy,
:func:`policy_with_style_nonce`, the same as :data:`CSP` but for a fresh per-response nonce that
admits those ``<style>`` elements (never ``'unsafe-inline'``; scripts stay ``'self'`` only) and
``blob:`` workers (ReDoc's search index runs in a worker built from its own bundle).

A header a route already set (e.g. a stricter ``Content-Security-Policy``) is kept. An unhandled
error's 500 is answered by Starlette outside every middleware: :func:`install` also gives the
application's catch-all error handler's answer the headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "frame-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The policy of every page and file (the crew app, planner, inspector and tracking pages)."""

COMMON_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def policy_with_style_nonce(nonce: str, *, style_hashes: Sequence[str] = ()) -> str:
    """:data:`CSP` with ``<style>`` elements carrying ``nonce`` allowed, and ``blob:`` workers.

    For a page whose vendored library injects its styles (ReDoc); the page passes the nonce to
    the library, a new one on every response. ``style_hashes`` (``sha256-...``) admit the fixed
    ``<style>`` elements a library writes while loading, before it can be given the nonce.
    Style attributes and scripts stay as strict.
    """
    styles = " ".join([f"'nonce-{nonce}'", *(f"'{h}'" for h in style_hashes)])
    directives = []
    for directive in CSP.split("; "):
        if directive == "style-src 'self'":
            directive = f"style-src 'self' {styles}"
        elif directive == "worker-src 'self'":
            directive = "worker-src 'self' blob:"
        directives.append(directive)
    return "; ".join(directives)


def policy_for(path: str) -> str:
    """The Content-Security-Policy for a request path: the same strict one everywhere (the
    API docs included: Swagger UI is vendored and started from a file)."""
    return CSP


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (errors and files included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = policy_for(str(scope.get("path", "")))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (("Content-Security-Policy", csp), *COMMON_HEADERS):
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Add the middleware, and the headers to the catch-all (500/503) error handler's answers.

    Call after the error handlers are installed.
    """
    app.add_middleware(SecurityHeadersMiddleware)
    handler = app.exception_handlers.get(Exception)
    if handler is None:
        return
    inner: ErrorHandler = handler  # type: ignore[assignment]

    async def with_headers(request: Request, exc: Exception) -> Response:
        response = await inner(request, exc)
        for name, value in (
            ("Content-Security-Policy", policy_for(request.url.path)),
            *COMMON_HEADERS,
        ):
            response.headers.setdefault(name, value)
        return response

    app.exception_handlers[Exception] = with_headers
