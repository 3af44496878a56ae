"""The inspector's review page in a real headless Chromium: boxes drawn, keys confirm/reject."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright import sync_api
from sqlalchemy.orm import Session

from field_api.common.actors import Role
from field_api.config import Settings, VisionSettings
from field_api.db import Base, make_engine, make_session_factory
from field_api.inspections import importing
from field_api.inspections.models import Finding, InspectionPhoto, LedgerLine, RepairOrder
from field_api.main import create_app
from tests.builders import make_crew, make_district, make_user
from tests.field_api.inspections.test_service import write_batch

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path("test-artifacts/screenshots")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, str, Settings]]:
    settings = Settings(
        env="test",
        database_url=f"sqlite:///{tmp_path}/inspector.db",
        media_dir=tmp_path / "media",
        token_pepper="page-test-pepper-0123456789",
        vision=VisionSettings(inspections_dir=tmp_path),
    )
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        district = make_district(session)
        make_crew(session, district=district, handles_repairs=True)
        _, token = make_user(session, settings, role=Role.inspector)
        importing.import_batch(session, write_batch(tmp_path), settings=settings, actor=None)
        line = session.get(LedgerLine, "L-10KV-01")
        assert line is not None
        line.district_id = district.id
    app = create_app(settings, session_factory=factory)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.05):  # until uvicorn has bound its socket
        if server.started:
            started.set()
        elif not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", token, settings
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_inspector_walks_findings_and_confirms_with_a_key(live: tuple[str, str, Settings]) -> None:
    url, token, settings = live
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []  # a CSP violation shows on the console; any script error too
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/inspector")
        page.fill("#token", token)
        page.check("#insulators")  # the queue holds defects only unless asked for insulators
        page.click("#signin")
        page.wait_for_selector("rect.box.current")
        assert page.locator("#count").inner_text().startswith("2")
        assert page.locator("rect.box").count() == 2  # both boxes of the photo are drawn
        first = page.locator("rect.box.current").get_attribute("data-finding-id")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "inspector.png"))
        page.keyboard.press("c")
        # locator waits, not wait_for_function: its string predicate needs eval, which the CSP refuses
        sync_api.expect(page.locator("#status")).to_contain_text("已确认")
        second = page.locator("rect.box.current").get_attribute("data-finding-id")
        assert second != first
        page.keyboard.press("r")
        sync_api.expect(page.locator("#status")).to_contain_text("已驳回")
        page.select_option("#status-filter", "proposed")
        page.click("button[type=submit]")
        sync_api.expect(page.locator("#count")).to_have_text(re.compile(r"^0"))
        browser.close()
    assert errors == [], errors

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        statuses = {f.id: f.status.value for f in session.query(Finding)}
        repairs = session.query(RepairOrder).all()
    engine.dispose()
    assert statuses == {first: "confirmed", second: "rejected"}
    # the defect sorts first (higher severity) and its confirmation raised a repair order
    assert first == "det-defect"
    assert [r.finding_id for r in repairs] == ["det-defect"]


def test_keyboard_review_draws_one_finding_at_a_time_and_undoes(
    live: tuple[str, str, Settings],
) -> None:
    url, token, settings = live
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/inspector")
        page.fill("#token", token)
        page.check("#insulators")
        page.click("#signin")
        page.wait_for_selector("rect.box.current")
        for key in "jkjkjkjk":  # quick presses: each move is drawn alone, never stacked
            page.keyboard.press(key)
        ids = page.locator('#details dd[data-field="id"]')
        sync_api.expect(ids).to_have_text("det-defect")
        sync_api.expect(page.locator("#stage svg")).to_have_count(1)
        sync_api.expect(page.locator("#details dt")).to_have_count(13)
        sync_api.expect(page.locator('#details dd[data-field="version"]')).to_have_text("1")
        # the model and version that proposed the finding, its batch, and the photo's state
        sync_api.expect(page.locator('#details dd[data-field="model"]')).to_have_text(
            "cplid-cascade 第 4 版"
        )
        sync_api.expect(page.locator('#details dd[data-field="batch"]')).to_have_text(
            "batch-test-0001"
        )
        sync_api.expect(page.locator('#details dd[data-field="photo"]')).to_have_text("完整")

        page.keyboard.press("c")
        sync_api.expect(page.locator("#status")).to_contain_text("已确认")
        sync_api.expect(page.locator("#status")).to_contain_text(
            "u"
        )  # the page says undo is possible
        sync_api.expect(ids).to_have_text("det-insulator")
        # its record names no model: the batch's (batch.json: cplid-cascade@3) stands in
        sync_api.expect(page.locator('#details dd[data-field="model"]')).to_have_text(
            "cplid-cascade 第 3 版"
        )
        page.keyboard.press("u")
        sync_api.expect(page.locator("#status")).to_contain_text("已撤销")
        sync_api.expect(ids).to_have_text("det-defect")  # back on the undone finding
        sync_api.expect(page.locator('#details dd[data-field="version"]')).to_have_text("3")
        sync_api.expect(page.locator("#stage svg")).to_have_count(1)
        browser.close()
    assert errors == [], errors

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        finding = session.get(Finding, "det-defect")
        repairs = session.query(RepairOrder).all()
        assert finding is not None and finding.status.value == "proposed"
        assert [r.stage.value for r in repairs] == ["cancelled"]
    engine.dispose()


def test_page_flags_a_truncated_photo(live: tuple[str, str, Settings]) -> None:
    url, token, settings = live
    engine = make_engine(settings.database_url)
    with Session(engine) as session, session.begin():
        for photo in session.query(InspectionPhoto):
            photo.truncated = True  # as imported from a batch whose JPEG was cut short
    engine.dispose()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/inspector")
        page.fill("#token", token)
        page.click("#signin")
        page.wait_for_selector("rect.box.current")
        sync_api.expect(page.locator('#details dd[data-field="photo"]')).to_have_text(
            "JPEG 文件不完整：已识别可解码部分"
        )
        browser.close()
    assert errors == [], errors
