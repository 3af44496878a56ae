"""Browser pages: the crew app (an installable PWA), the planner dashboard, their static files.

The pages are server-rendered shells (Jinja2) carrying the message catalogue; the JavaScript
talks to the same JSON API as any other client, with the user's bearer token.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from field_api import security_headers
from field_api.common import i18n
from field_api.common.hashing import file_chunks, sha256_chunks
from field_api.errors import NotFound
from field_api.language import language_of
from field_api.types import Text

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))

router = APIRouter(prefix="/app", tags=["web"], include_in_schema=False)

LangCookie = Annotated[str | None, Cookie(alias=i18n.LANG_COOKIE)]
LangQuery = Annotated[Text | None, Query(alias="lang", max_length=8)]

# The app shell the service worker keeps for offline starts (paths under /app/).
SHELL_ASSETS = (
    "/app/",
    "/app/static/app.css",
    "/app/static/js/common.js",
    "/app/static/js/outbox.js",
    "/app/static/js/barcode.js",
    "/app/static/js/crew.js",
    "/app/static/vendor/zxing/zxing-library.min.js",
    "/app/static/icons/icon.svg",
    "/app/static/icons/icon-192.png",
    "/app/static/icons/icon-512.png",
)


@lru_cache
def assets_version() -> str:
    """A digest of every static file, so a new deployment replaces the cached app shell."""
    return sha256_chunks(_asset_chunks())[:12]


def _asset_chunks() -> Iterator[bytes]:
    """Each static file's name and bytes, then each page template's bytes, in a fixed order."""
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            yield path.relative_to(STATIC_DIR).as_posix().encode()
            yield from file_chunks(path)
    for path in sorted((HERE / "templates").glob("*.html")):
        yield from file_chunks(path)


def _page(request: Request, template: str, lang: i18n.Lang) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "other_lang": i18n.other(lang),
            "m": i18n.messages(lang),
            "version": assets_version(),
        },
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


def _lang(request: Request, query: str | None) -> i18n.Lang:
    """``?lang=``, else the language switch's cookie, else the browser's Accept-Language."""
    return i18n.normalise(query) if query else language_of(request)


@router.get("/", response_class=HTMLResponse)
def crew_app(request: Request, fo_lang: LangCookie = None, lang: LangQuery = None) -> HTMLResponse:
    """The crew app (sign in, today's orders, the one-visit flow)."""
    del fo_lang  # read by _lang through the request; declared for the OpenAPI
    return _page(request, "crew.html", _lang(request, lang))


@router.get("/planner", response_class=HTMLResponse)
def planner_dashboard(
    request: Request, fo_lang: LangCookie = None, lang: LangQuery = None
) -> HTMLResponse:
    """The planners' dashboard of rates, deadlines and flags."""
    del fo_lang  # read by _lang through the request; declared for the OpenAPI
    return _page(request, "planner.html", _lang(request, lang))


@router.get("/reliability", response_class=HTMLResponse)
def reliability_page(
    request: Request, fo_lang: LangCookie = None, lang: LangQuery = None
) -> HTMLResponse:
    """Supply reliability against the targets: SAIDI per month, area and district (planners)."""
    del fo_lang  # read by _lang through the request; declared for the OpenAPI
    return _page(request, "reliability.html", _lang(request, lang))


@router.get("/outage-budget", response_class=HTMLResponse)
def outage_budget_page(
    request: Request, fo_lang: LangCookie = None, lang: LangQuery = None
) -> HTMLResponse:
    """The planned-outage customer-hours budget: burn-down per district, merge proposals and
    the live-line share (planners)."""
    del fo_lang  # read by _lang through the request; declared for the OpenAPI
    return _page(request, "outage_budget.html", _lang(request, lang))


@router.get("/lang/{code}")
def switch_language(
    code: Annotated[Text, PathParam(max_length=16)],
    next: Annotated[Text, Query(max_length=500)] = "/app/",
) -> RedirectResponse:
    """Remember the chosen language in a cookie and go back to the page."""
    # Only same-site paths under /app/: an open redirect would help phishing links.
    target = next if next.startswith("/app/") and "//" not in next and "\\" not in next else "/app/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(i18n.LANG_COOKIE, i18n.normalise(code), max_age=365 * 86400, samesite="lax")
    return response


@router.get("/manifest.webmanifest")
def manifest(fo_lang: LangCookie = None) -> Response:
    """The PWA manifest of the crew app."""
    lang = i18n.normalise(fo_lang)
    m = i18n.messages(lang)
    body = {
        "name": f"fieldops · {m['app.title']}",
        "short_name": m["app.title"],
        "lang": lang,
        "start_url": "/app/",
        "scope": "/app/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b5cab",
        "icons": [
            {"src": "/app/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/app/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "/app/static/icons/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker: keeps the app shell for offline starts (served from /app/ for scope)."""
    source = (STATIC_DIR / "js" / "sw.template.js").read_text(encoding="utf-8")
    source = source.replace("__VERSION__", assets_version()).replace(
        "__SHELL__", json.dumps(list(SHELL_ASSETS))
    )
    return Response(
        source,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/app/"},
    )


@router.get("/static/{path:path}")
def static_file(path: str) -> FileResponse:
    """A static file of the pages (scripts, styles, icons, vendored libraries)."""
    target = (STATIC_DIR / path).resolve()
    # resolve() folds "..": anything outside the static folder is simply not there.
    if not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise NotFound(
            f"no static file {path!r}",
            code="web.static_not_found",
            params={"path": path},
        )
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if target.suffix == ".js":
        media_type = "text/javascript"
    return FileResponse(target, media_type=media_type, headers={"Cache-Control": "no-cache"})


# The interactive API documentation, from vendored files (no CDN, no inline script).
docs_router = APIRouter(tags=["meta"], include_in_schema=False)
DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fieldops API</title>
<link rel="icon" href="/app/static/icons/icon-192.png">
<link rel="stylesheet" href="/app/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/app/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/app/static/js/api-docs.js"></script>
</body>
</html>
"""


@docs_router.get("/docs", response_class=HTMLResponse)
def api_docs() -> HTMLResponse:
    """The interactive API documentation (Swagger UI served by this server)."""
    return HTMLResponse(DOCS_HTML, headers={"Cache-Control": "no-cache"})


# ReDoc injects its styles in <style> elements: the page's own policy admits those carrying a
# nonce made for this response, which api-redoc.js hands to ReDoc (never 'unsafe-inline').
# While its bundle loads, before it can be given the nonce, ReDoc writes one fixed stylesheet
# (perfect-scrollbar's), first empty then filled: those two contents are admitted by hash.
# tests/web/test_api_docs.py fails on any CSP refusal, so a new ReDoc with other styles shows.
REDOC_STYLE_HASHES = (
    "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",  # the empty <style> (sha256 of "")
    "sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc=",  # perfect-scrollbar's rules
)
REDOC_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fieldops API reference</title>
<link rel="icon" href="/app/static/icons/icon-192.png">
</head>
<body>
<div id="redoc" data-spec-url="/openapi.json" data-style-nonce="{nonce}"></div>
<script src="/app/static/vendor/redoc/redoc.standalone.js"></script>
<script src="/app/static/js/api-redoc.js"></script>
</body>
</html>
"""


@docs_router.get("/redoc", response_class=HTMLResponse)
def api_reference() -> HTMLResponse:
    """The API reference (ReDoc served by this server)."""
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        REDOC_HTML.replace("{nonce}", nonce),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": security_headers.policy_with_style_nonce(
                nonce, style_hashes=REDOC_STYLE_HASHES
            ),
        },
    )

