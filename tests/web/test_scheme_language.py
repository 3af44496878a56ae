"""The crew app shows a refused supply scheme in the page's language (failures, proposals)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.web.support import LiveServer, signed_in


def test_a_refused_scheme_reads_in_chinese_then_in_english(
    phone: Any, live_server: LiveServer
) -> None:
    order_id = live_server.new_order(stage=Stage.surveyed)
    with live_server.session_factory.begin() as session:
        order = session.get(WorkOrder, order_id)
        assert order is not None
        order.capacity_kw = 20  # above every single-phase residential kit (12 kW): refused
    signed_in(phone, live_server.tokens["crew"])
    phone.goto(f"/app/#/order/{order_id}/scheme")
    phone.get_by_role("button", name="申请供电方案").click()
    status = phone.locator("#scheme-status")
    expect(status).to_contain_text("20 kW 超出居民 1 相标准套件的范围（最大 12 kW）")
    expect(phone.locator("#scheme-proposals")).to_have_text("改为 3 相接入，使用套件 B1")
    assert "outside" not in status.inner_text()

    phone.goto(f"/app/?lang=en#/order/{order_id}/scheme")
    phone.get_by_role("button", name="Request the supply scheme").click()
    expect(phone.locator("#scheme-status")).to_contain_text(
        "20 kW is outside the standard kits for residential 1-phase connections (up to 12 kW)"
    )
    expect(phone.locator("#scheme-proposals")).to_have_text("connect 3-phase with kit B1")
