"""The API documentation works offline, in a real browser, under the server's strict CSP.

Both pages, Swagger UI at /docs and ReDoc at /redoc, are opened on the live server with the
real Content-Security-Policy header; a CSP refusal (console message or a
``securitypolicyviolation`` event) or a request leaving the server fails the test.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.support import LiveServer

# A few operation summaries, as both pages show them (FastAPI's titles of the endpoints).
SUMMARIES = ("Create Work Order", "Upload Media", "Sign Contract")

LISTEN_FOR_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


class Traffic:
    """What a page asked for, and which answers failed (4xx/5xx)."""

    def __init__(self, page: Any) -> None:
        self.requested: list[str] = []
        self.failed: list[str] = []
        page.on("request", lambda request: self.requested.append(request.url))
        page.on("response", self._answer)

    def _answer(self, response: Any) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")


def _open(page: Any, path: str) -> tuple[Traffic, Any]:
    traffic = Traffic(page)
    page.add_init_script(LISTEN_FOR_VIOLATIONS)
    return traffic, page.goto(path)


def _clean(page: Any, traffic: Traffic, url: str) -> None:
    """No CSP violation event, every request to this server (or a blob: worker), none failed."""
    assert page.evaluate("window.__cspViolations") == []
    foreign = [u for u in traffic.requested if not u.startswith((url, "blob:"))]
    assert foreign == []
    assert traffic.failed == []


def test_swagger_ui_lists_the_operations_from_vendored_files(
    phone: Any, live_server: LiveServer
) -> None:
    traffic, response = _open(phone, "/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    # Swagger UI has read /openapi.json and drawn the operations (CSP violations fail `phone`).
    expect(phone.locator(".opblock-tag-section").first).to_be_visible()
    assert phone.locator(".opblock").count() > 50
    summaries = phone.locator(".opblock-summary-description").all_inner_texts()
    for summary in SUMMARIES:
        assert summary in summaries
    _clean(phone, traffic, live_server.url)


def test_redoc_lists_the_operations_under_a_nonce_policy(
    phone: Any, live_server: LiveServer
) -> None:
    traffic, response = _open(phone, "/redoc")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "style-src 'self' 'nonce-" in policy
    # ReDoc has read /openapi.json and drawn the operations, styled by its nonce'd <style>s.
    for summary in SUMMARIES:
        expect(phone.locator("h2", has_text=summary).first).to_be_attached()
    assert phone.locator("[data-section-id^='operation/']").count() > 50
    styled = phone.evaluate(
        "Array.from(document.querySelectorAll('style')).filter(s => s.nonce).length"
    )
    assert styled > 0
    _clean(phone, traffic, live_server.url)


def test_redoc_gets_a_new_style_nonce_on_every_answer(phone: Any, live_server: LiveServer) -> None:
    first = phone.request.get(f"{live_server.url}/redoc").headers["content-security-policy"]
    second = phone.request.get(f"{live_server.url}/redoc").headers["content-security-policy"]
    assert "'nonce-" in first and first != second
