"""Security headers on every page, static file, API answer and evidence file; no inline script."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings
from field_api.main import create_app
from field_api.security_headers import CSP
from tests.builders import auth, make_crew, make_order, make_user
from tests.field_api.media.imaging import BRIGHTON_18, mp4_bytes


def _directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_secure(r: Response) -> None:
    """The headers every answer carries, whatever its type or status."""
    h = r.headers
    assert h["x-content-type-options"] == "nosniff", r.url
    assert h["x-frame-options"] == "DENY", r.url
    assert h["referrer-policy"] in ("no-referrer", "same-origin"), r.url
    csp = h["content-security-policy"]
    assert csp == CSP, r.url
    d = _directives(csp)
    assert d["frame-ancestors"] == ["'none'"]
    assert d["object-src"] == ["'none'"]
    for directive in ("script-src", "style-src", "default-src"):
        assert d[directive] == ["'self'"], (directive, d[directive])


def test_policy_has_no_inline_script_eval_or_foreign_origin() -> None:
    d = _directives(CSP)
    for values in d.values():
        assert "'unsafe-inline'" not in values and "'unsafe-eval'" not in values
        assert not any(v.startswith("http") or v == "*" for v in values), values


class _InlineFinder(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> inline event handler")
            if name == "style":
                self.problems.append(f"<{tag} style=...> inline style")
            if name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}=javascript:...>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            kind = (names.get("type") or "text/javascript").lower()
            data_block = kind in ("application/json", "application/ld+json")
            if names.get("src"):
                self.scripts.append(str(names["src"]))
            elif not data_block:
                self._in_script = True
                self.problems.append("inline <script> without src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def inline_problems(html: str) -> tuple[list[str], list[str]]:
    finder = _InlineFinder()
    finder.feed(html)
    return finder.problems, finder.scripts


def test_inline_finder_sees_what_a_strict_policy_blocks() -> None:
    problems, _ = inline_problems(
        '<p style="x" onclick="y"></p><script>alert(1)</script><style>p{}</style>'
        '<a href="javascript:void(0)">x</a><script type="application/json">{"a":1}</script>'
    )
    assert len(problems) == 5, problems


@pytest.fixture
def tracking_path(client: TestClient, session: Session, settings: Settings) -> str:
    crew = make_crew(session)
    order = make_order(session, crew=crew)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    session.commit()
    r = client.get(f"/work-orders/{order.id}/tracking", headers=auth(token))
    assert r.status_code == 200, r.text
    return str(r.json()["path"])


def test_every_page_has_the_headers_and_no_inline_script(
    client: TestClient, tracking_path: str
) -> None:
    pages = ["/app/", "/app/planner", "/inspector", tracking_path]
    seen_scripts: set[str] = set()
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert r.headers["content-type"].startswith("text/html"), url
        assert_secure(r)
        problems, scripts = inline_problems(r.text)
        assert problems == [], (url, problems)
        seen_scripts.update(scripts)
    # every script a page loads comes from this origin and is served with the headers
    assert seen_scripts
    for src in sorted(seen_scripts):
        assert src.startswith("/"), src
        r = client.get(src)
        assert r.status_code == 200, src
        assert r.headers["content-type"].startswith("text/javascript"), src
        assert_secure(r)


def test_static_files_and_api_answers_have_the_headers(client: TestClient) -> None:
    for url in (
        "/app/static/app.css",
        "/app/static/inspector.css",
        "/app/static/icons/icon-192.png",
        "/app/sw.js",
        "/app/manifest.webmanifest",
        "/healthz",
        "/openapi.json",
    ):
        r = client.get(url)
        assert r.status_code == 200, url
        assert_secure(r)
    for url, status in (("/me", 401), ("/no-such-route", 404), ("/app/static/nope.js", 404)):
        r = client.get(url)
        assert r.status_code == status, url
        assert_secure(r)
    assert_secure(client.post("/healthz"))  # 405


def test_api_docs_are_served_from_this_server_under_the_strict_policy(
    client: TestClient,
) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert_secure(r)
    finder = _InlineFinder()
    finder.feed(r.text)
    finder.close()
    assert not finder.problems, finder.problems
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sources and all(s.startswith("/app/static/") for s in sources), sources
    for path in sources:
        asset = client.get(path)
        assert asset.status_code == 200, path
        assert_secure(asset)
    # ReDoc is vendored too, under its own policy: a per-response nonce for its <style>s only.
    redoc = client.get("/redoc")
    assert redoc.status_code == 200
    d = _directives(redoc.headers["content-security-policy"])
    assert d["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in d["style-src"]
    nonce = re.search(r'data-style-nonce="([^"]+)"', redoc.text)
    assert nonce and f"'nonce-{nonce.group(1)}'" in d["style-src"]
    assert re.findall(r'src="([^"]+)"', redoc.text) == [
        "/app/static/vendor/redoc/redoc.standalone.js",
        "/app/static/js/api-redoc.js",
    ]


def _upload(
    client: TestClient, order_id: int, token: str, data: bytes, name: str, mime: str
) -> int:
    r = client.post(
        f"/work-orders/{order_id}/media",
        data={"client_id": str(uuid.uuid4()), "kind": "site"},
        files={"file": (name, data, mime)},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_evidence_served_with_checked_type_and_disposition(
    client: TestClient, session: Session, settings: Settings
) -> None:
    crew = make_crew(session)
    order = make_order(session, crew=crew, lat=46.842607, lon=-91.994560)
    _, token = make_user(session, settings, role=Role.crew, crew=crew)
    session.commit()
    # the client claims HTML: the service serves the type it checked
    photo = _upload(client, order.id, token, BRIGHTON_18.read_bytes(), "x.html", "text/html")
    r = client.get(f"/media/{photo}/content", headers=auth(token))
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == f'inline; filename="media-{photo}.jpg"'
    assert_secure(r)
    thumb = client.get(f"/media/{photo}/thumbnail", headers=auth(token))
    assert thumb.status_code == 200
    assert thumb.headers["content-disposition"] == f'inline; filename="media-{photo}-thumb.jpg"'
    assert_secure(thumb)
    cached = client.get(
        f"/media/{photo}/content", headers=auth(token, **{"If-None-Match": r.headers["etag"]})
    )
    assert cached.status_code == 304
    assert_secure(cached)

    video = _upload(client, order.id, token, mp4_bytes(), "clip.mp4", "video/mp4")
    v = client.get(f"/media/{video}/content", headers=auth(token))
    assert v.status_code == 200 and v.headers["content-type"] == "video/mp4"
    assert v.headers["content-disposition"] == f'attachment; filename="media-{video}.mp4"'
    assert_secure(v)


def test_an_unhandled_error_answers_500_with_the_headers(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"database_url": "sqlite://"}))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500 and r.json()["code"] == "server.internal"
    assert_secure(r)
