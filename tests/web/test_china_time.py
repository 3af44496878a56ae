"""One clock for people, in a real browser: a flag raised at 2026-12-04T17:30Z and a stage
change at the same instant read 2026-12-05 01:30 (Beijing) on the planner's flag list and on
the customer's tracking page, even on a phone set to another time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from field_api.audit import service as audit_service
from field_api.callbacks.models import ReviewFlag
from field_api.work_orders.rules import Stage
from tests.web.conftest import _context
from tests.web.support import LiveServer, signed_in

EVENT = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)


def test_flag_list_and_tracking_page_show_the_same_beijing_date(
    browser: Any, live_server: LiveServer
) -> None:
    # The surveyed step happens at EVENT (one hour after acceptance); a flag is raised then too.
    order_id = live_server.new_order(
        stage=Stage.surveyed, accepted_at=EVENT - timedelta(hours=1), name="时区测试"
    )
    with live_server.session_factory.begin() as session:
        flag = ReviewFlag(
            order_id=order_id,
            kind="installed_too_soon",
            reason="时区测试",
            detected_at=EVENT,
        )
        session.add(flag)
        session.flush()
        audit_service.record(session, actor=None, action="review_flag.raise", entity=flag)
    link = httpx.get(
        f"{live_server.url}/work-orders/{order_id}/tracking",
        headers={"Authorization": f"Bearer {live_server.tokens['service']}"},
    ).json()

    # A phone whose own zone is New York (UTC-5): the pages still show Beijing time.
    context = _context(browser, live_server, timezone_id="America/New_York")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        assert page.evaluate("new Date(Date.UTC(2026, 11, 4, 17, 30)).getDate()") == 4

        page.goto(link["path"])
        step = page.locator("main li time").filter(has_text="2026-12-05 01:30")
        expect(step).to_have_count(1)
        expect(page.locator("main")).not_to_contain_text("2026-12-04")

        signed_in(page, live_server.tokens["planner"], "/app/planner")
        expect(page.locator("#panels")).to_have_attribute("data-loaded", "true")
        ours = page.locator(
            "#panel-offsystem li.flag", has=page.locator(f'a[href="/app/#/order/{order_id}"]')
        )
        expect(ours).to_have_count(1)
        when = ours.locator("time")
        expect(when).to_have_text("2026-12-05 01:30")
        expect(when).to_have_attribute("datetime", "2026-12-05T01:30:00+08:00")
    finally:
        context.close()
    assert errors == []
