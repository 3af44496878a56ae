"""Browser tests: a real uvicorn on 127.0.0.1 with the demo data, driven by headless Chromium.

One server and one browser per session (they take seconds to start); each test gets its own
browser context (its own storage and IndexedDB) at phone size. Screenshots of every page go
to test-artifacts/screenshots/ so a person can look at them.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from field_api import demo
from field_api.audit import service as audit_service
from field_api.config import Settings
from field_api.db import Base, make_engine, make_session_factory
from field_api.main import create_app
from field_api.network import service as network
from field_api.sms import gateways as sms_gateways
from field_api.wiring import install_hooks
from tests.sms_support import RecordingGateway, SmsInbox
from tests.web.support import FIXTURES, PHONE, LiveServer

playwright_sync = pytest.importorskip("playwright.sync_api")
# Two shared cores and a model training beside us: allow slow steps (nothing is timed).
playwright_sync.expect.set_options(timeout=45_000)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("web")
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{root}/fieldops.db",
        media_dir=root / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=root / "keys" / "signing.key",
    )
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    install_hooks()  # the demo's stage changes must reach the other slices (deadlines, ...)
    with factory.begin() as session:
        summary = demo.load(session, settings=settings)
        # Two transformers beside the demo customers, so the scheme engine has a grid to use.
        network_file = FIXTURES.parent / "network" / "network.geojson"
        network.import_file(
            session, network_file.read_bytes(), filename=network_file.name, actor=None
        )
    app = create_app(settings, session_factory=factory)
    gateway = RecordingGateway()
    previous_gateway = sms_gateways.install(gateway)
    sms = SmsInbox(factory, settings, gateway)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ready = threading.Event()
    while not server.started and thread.is_alive():
        ready.wait(0.02)  # poll for readiness; nothing is timed or asserted on speed
    if not server.started:
        pytest.fail("uvicorn did not start")
    yield LiveServer(f"http://127.0.0.1:{port}", settings, factory, sms, summary.tokens)
    server.should_exit = True
    thread.join(timeout=10)
    sms_gateways.install(previous_gateway)
    with factory() as session:  # every browser flow went through the audited path
        problems = audit_service.verify(session)
    engine.dispose()
    assert not problems, f"audit chain broken after the browser tests: {problems[0].message}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        # As with PostgreSQL: on CI a missing browser is a broken install, not a skip.
        if os.environ.get("CI") == "true":
            pytest.fail("Debian chromium is not installed (.ci/run installs it)")
        pytest.skip("Debian chromium is not installed")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _context(browser: Any, live_server: LiveServer, **extra: Any) -> Any:
    options: dict[str, Any] = {
        "viewport": PHONE,
        "device_scale_factor": 1,
        "is_mobile": True,
        "has_touch": True,
        "locale": "zh-CN",
        "base_url": live_server.url,
        "service_workers": "block",
        "geolocation": {"latitude": 22.5333, "longitude": 113.9305},
        "permissions": ["geolocation"],
        "accept_downloads": True,
    }
    options.update(extra)
    context = browser.new_context(**options)
    context.set_default_timeout(45_000)
    return context


@pytest.fixture
def phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """A phone-sized page in a fresh context; service workers blocked so routing stays visible."""
    context = _context(browser, live_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: _csp_violation(msg, errors))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


def _csp_violation(msg: Any, errors: list[str]) -> None:
    """A console message of a Content-Security-Policy refusal counts as a page error."""
    if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
        errors.append(msg.text)


@pytest.fixture
def pwa_phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """Like ``phone`` but with service workers allowed (the installable app)."""
    context = _context(browser, live_server, service_workers="allow")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: _csp_violation(msg, errors))
    yield page
    context.close()
    assert errors == [], f"CSP violations on the page: {errors}"
