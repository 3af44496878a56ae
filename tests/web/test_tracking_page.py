"""The public progress page a customer opens from the SMS link, on a 360 px phone."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect

from field_api.work_orders.rules import Stage
from tests.web.support import LiveServer, audit, shot


def test_the_public_progress_page_fits_a_phone(phone: Any, live_server: LiveServer) -> None:
    order_id = live_server.new_order(stage=Stage.scheme_answered, name="王小明")
    link = httpx.get(
        f"{live_server.url}/work-orders/{order_id}/tracking",
        headers={"Authorization": f"Bearer {live_server.tokens['service']}"},
    ).json()
    phone.goto(link["path"])
    expect(phone.locator("main")).to_contain_text("当前状态：供电方案已答复")
    expect(phone.locator("main")).not_to_contain_text("王小明")  # the name is masked
    # Styled by the shared phone stylesheet alone (no inline styles in the page).
    expect(phone.locator("h1")).to_have_css("background-color", "rgb(11, 92, 171)")
    expect(phone.locator(".stage")).to_have_css("margin-top", "8px")
    assert phone.locator("style, [style]").count() == 0
    audit(phone)
    shot(phone, "tracking-360")
