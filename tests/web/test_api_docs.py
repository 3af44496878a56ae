"""The interactive API documentation works offline, in a real browser, under the strict CSP."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.support import LiveServer


def test_swagger_ui_renders_the_operations_from_vendored_files(phone: Any, live_server: LiveServer) -> None:
    requested: list[str] = []
    phone.on("request", lambda request: requested.append(request.url))
    phone.goto("/docs")
    # Swagger UI has read /openapi.json and drawn the operations (CSP violations fail `phone`).
    expect(phone.locator(".opblock-tag-section").first).to_be_visible()
    assert phone.locator(".opblock").count() > 50
    assert all(url.startswith(live_server.url) for url in requested), [
        u for u in requested if not u.startswith(live_server.url)
    ]
