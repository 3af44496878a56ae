"""The crew app in a real browser: sign in, today's orders, and the offline outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from playwright.sync_api import expect

from field_api.media.models import MediaItem
from field_api.schemes.models import SupplyScheme
from field_api.visits.models import Visit
from field_api.work_orders.rules import Stage
from tests.web.support import FIXTURES, LiveServer, audit, shot, sign_in, signed_in

CHINA = timezone(timedelta(hours=8))


def open_order(page: Any, order_id: int, step: str = "") -> None:
    page.goto(f"/app/#/order/{order_id}" + (f"/{step}" if step else ""))
    expect(page.locator("#order-title")).to_have_text(f"工单 {order_id}")
    expect(page.locator("#order-step h3")).to_be_visible()


def test_crew_signs_in_and_sees_todays_orders_with_deadlines(
    phone: Any, live_server: LiveServer
) -> None:
    late = live_server.new_order(accepted_at=datetime.now(UTC) - timedelta(days=20))
    booked = live_server.new_order(stage=Stage.surveyed)
    today = datetime.now(CHINA).date()
    start = datetime(today.year, today.month, today.day, 14, 0, tzinfo=CHINA)
    response = httpx.post(
        f"{live_server.url}/work-orders/{booked}/appointments",
        headers={"Authorization": f"Bearer {live_server.tokens['crew']}"},
        json={
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=2)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    signed_in(phone, live_server.tokens["crew"])
    orders = phone.locator("#orders-list li.order")
    expect(orders.first).to_be_visible()
    ids = {int(x) for x in orders.evaluate_all("els => els.map(e => e.dataset.orderId)")}
    # CREW-A's open demo orders; CREW-B's and closed/whitelisted ones are not listed.
    assert {1, 2, 3, 4, late, booked} <= ids
    assert not ids & {5, 6, 7, 8, 9, 10, 11, 12}
    # Twenty days after acceptance the five-working-day limit is gone: red, and listed first.
    row = phone.locator(f'li.order[data-order-id="{late}"]')
    expect(row).to_have_class("order order--overdue")
    expect(row.locator(".pill--overdue")).to_have_text("已超时")
    # The visit booked with the customer for today comes first, then the most urgent.
    first_two = orders.evaluate_all("els => els.slice(0, 2).map(e => +e.dataset.orderId)")
    assert first_two == [booked, late]
    expect(phone.locator(f'li.order[data-order-id="{booked}"] .pill--booked')).to_have_text(
        "今日预约 14:00–16:00"
    )
    expect(phone.locator('li.order[data-order-id="4"]')).to_have_class("order")
    # The token stays on the device: a reload goes straight to the list.
    phone.reload()
    expect(phone.locator("#orders-list li.order").first).to_be_visible()
    shot(phone, "crew-orders-360")


def test_a_bad_token_is_refused_with_a_message(phone: Any, live_server: LiveServer) -> None:
    sign_in(phone, "fo_not_a_real_token_0000000")
    expect(phone.locator("#signin-error")).to_have_text("令牌无效或已吊销")
    expect(phone.get_by_label("访问令牌")).to_have_attribute("aria-invalid", "true")
    shot(phone, "crew-signin-360")


WAIT_FOR_SERVICE_WORKER = """async () => {
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise(r => navigator.serviceWorker.addEventListener("controllerchange", r));
  }
  return navigator.serviceWorker.controller.scriptURL;
}"""


def test_offline_actions_and_photos_are_kept_and_sent_once_when_the_network_returns(
    pwa_phone: Any, live_server: LiveServer
) -> None:
    phone = pwa_phone
    order_id = live_server.new_order()
    signed_in(phone, live_server.tokens["crew"])
    # The installed app (service worker) keeps the shell: the app starts without network.
    assert phone.evaluate(WAIT_FOR_SERVICE_WORKER).endswith("/app/sw.js")
    open_order(phone, order_id)
    phone.context.set_offline(True)
    expect(phone.locator("#net-banner")).to_be_visible()
    phone.get_by_role("button", name="到达现场（记录位置）").click()
    expect(phone.locator("#visit-bar")).to_contain_text("到达记录待提交")
    phone.locator("#photo-site").set_input_files(str(FIXTURES / "site.jpg"))
    phone.get_by_label("敷设方式").select_option("D1")
    phone.get_by_role("button", name="完成本步并推进工单").click()
    expect(phone.locator("#order-outbox")).to_have_text("待提交 3 项")
    # Kept in IndexedDB across a restart of the app while still offline.
    phone.reload()
    expect(phone.locator("#order-outbox")).to_have_text("待提交 3 项")
    shot(phone, "crew-offline-360")
    assert live_server.stage(order_id) == Stage.accepted
    assert live_server.rows_of(Visit, order_id) == []

    phone.context.set_offline(False)
    expect(phone.locator("#order-outbox")).to_be_hidden()
    # Arrival, photo, completion: each applied exactly once, in order; the order moved on.
    assert len(live_server.rows_of(Visit, order_id)) == 1
    assert [m.kind.value for m in live_server.rows_of(MediaItem, order_id)] == ["site"]
    surveyed = [r for r in live_server.transitions(order_id) if r.to_stage == Stage.surveyed]
    assert len(surveyed) == 1
    expect(phone.locator(".step").first).to_have_class("step step--done")


def test_lost_responses_are_retried_with_the_same_key_and_client_id(
    phone: Any, live_server: LiveServer
) -> None:
    order_id = live_server.new_order(stage=Stage.surveyed)
    signed_in(phone, live_server.tokens["crew"])
    open_order(phone, order_id, "scheme")
    seen: list[dict[str, str]] = []

    def deliver_then_drop(route: Any) -> None:
        # The server receives and applies the request; the answer never reaches the phone.
        seen.append(route.request.headers)
        route.fetch()
        route.abort("internetdisconnected")

    phone.route(f"**/work-orders/{order_id}/schemes", deliver_then_drop)
    with phone.expect_event("requestfailed", lambda r: r.url.endswith("/schemes")):
        phone.get_by_role("button", name="申请供电方案").click()
    # The phone saw a network failure and kept the request for a retry.
    expect(phone.locator("#order-outbox")).to_have_text("待提交 1 项")
    phone.unroute(f"**/work-orders/{order_id}/schemes")
    replayed: list[str | None] = []
    phone.on(
        "response",
        lambda r: (
            replayed.append(r.headers.get("idempotent-replayed"))
            if r.url.endswith(f"/work-orders/{order_id}/schemes")
            else None
        ),
    )
    phone.evaluate("FOOutbox.flush()")
    expect(phone.locator("#order-outbox")).to_be_hidden()
    assert len(seen) == 1 and seen[0]["idempotency-key"]
    assert replayed == ["true"]  # the retry carried the same key: the stored answer came back
    assert len(live_server.rows_of(SupplyScheme, order_id)) == 1
    assert live_server.stage(order_id) == Stage.scheme_answered
    phone.goto(f"/app/#/order/{order_id}/scheme")
    expect(phone.locator("#scheme-facts")).to_contain_text("TX-NANSHAN")


def test_english_is_one_tap_away_and_every_control_has_a_label(
    phone: Any, live_server: LiveServer
) -> None:
    order_id = live_server.new_order()
    signed_in(phone, live_server.tokens["crew"])
    audit(phone)
    phone.get_by_role("link", name="English").click()
    expect(phone.locator("#orders-title")).to_have_text("Today's orders")
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    phone.goto(f"/app/#/order/{order_id}")
    expect(phone.locator(".step--active")).to_contain_text("Site survey")
    phone.get_by_role("button", name="Arrived on site (record position)").click()
    expect(phone.get_by_label("Laying method")).to_be_visible()
    audit(phone)
    shot(phone, "crew-order-english-360")
    phone.get_by_role("link", name="中文").click()
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
