"""A crew completes a one-visit connection in the browser, step by step, on a 360 px phone."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from field_api.contracts.models import Contract
from field_api.demo import DEPOT
from field_api.media.models import MediaItem
from field_api.visits.models import Visit, VisitOutcome
from field_api.work_orders.rules import Stage
from tests.web.support import FIXTURES, LiveServer, audit, shot, signed_in

METER_CODE = "3230001021500012345678"  # what tests/fixtures/web/meter-barcode.png encodes


def draw_signature(page: Any) -> None:
    box = page.locator("#signature-pad").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(box["x"] + 20 + i * 25, box["y"] + box["height"] * (0.3 + 0.04 * (i % 4)))
    page.mouse.up()


def test_crew_connects_a_customer_in_one_visit_from_arrival_to_energising(
    phone: Any, live_server: LiveServer
) -> None:
    order_id = live_server.new_order()
    signed_in(phone, live_server.tokens["crew"])
    phone.goto(f"/app/#/order/{order_id}")

    # 1. On site: arrival with the phone's position, a site photo, the survey.
    expect(phone.locator(".step--active")).to_contain_text("现场勘查")
    phone.get_by_role("button", name="到达现场（记录位置）").click()
    expect(phone.locator("#visit-state")).to_contain_text("距工单位置 0 米")
    phone.locator("#photo-site").set_input_files(str(FIXTURES / "site.jpg"))
    expect(phone.locator('.photo__state[data-kind="site"]')).to_contain_text("已上传")
    phone.get_by_label("敷设方式").select_option("D1")
    shot(phone, "flow-1-survey-360")
    phone.get_by_role("button", name="完成本步并推进工单").click()
    expect(phone.locator(".step--active")).to_contain_text("供电方案")
    assert live_server.stage(order_id) == Stage.surveyed

    # 2. The supply scheme from the engine (the demo grid's transformers).
    phone.get_by_role("button", name="申请供电方案").click()
    expect(phone.locator(".step--active")).to_contain_text("合同签署")
    assert live_server.stage(order_id) == Stage.scheme_answered
    phone.goto(f"/app/#/order/{order_id}/scheme")
    expect(phone.locator("#scheme-facts")).to_contain_text("TX-NANSHAN")
    shot(phone, "flow-2-scheme-360")

    # 3. The contract: generated, code to the customer's phone, signed on the glass.
    phone.goto(f"/app/#/order/{order_id}/contract")
    phone.get_by_role("button", name="生成合同").click()
    expect(phone.locator("#contract-box .facts")).to_contain_text("HT")
    phone.get_by_role("button", name="发送验证码到客户手机").click()
    expect(phone.locator("#contract-status")).to_contain_text("验证码已发送至 *******9000")
    found = re.search(r"验证码：(\d+)", live_server.sms.sent[-1][1])
    assert found is not None, live_server.sms.sent
    code = found.group(1)
    phone.get_by_role("button", name="确认签署").click()
    expect(phone.locator("#contract-error")).to_have_text("请先签名")
    draw_signature(phone)
    phone.get_by_label("短信验证码").fill(code)
    audit(phone)
    shot(phone, "flow-3-contract-360")
    phone.get_by_role("button", name="确认签署").click()
    expect(phone.locator(".step--active")).to_contain_text("装表与照片")
    assert live_server.stage(order_id) == Stage.contract_signed
    (contract,) = live_server.rows_of(Contract, order_id)
    assert contract.signature_image_sha256

    # 4. Meter photos and the barcode read in the browser (ZXing: headless Linux has no
    #    BarcodeDetector), though the photo was stored turned sideways.
    for kind in ("meter_box", "seal", "wiring"):
        phone.locator(f"#photo-{kind}").set_input_files(str(FIXTURES / "site.jpg"))
    phone.locator("#barcode-photo").set_input_files(str(FIXTURES / "meter-barcode.png"))
    expect(phone.locator("#barcode-status")).to_contain_text(METER_CODE)
    expect(phone.get_by_label("表号（扫描结果）")).to_have_value(METER_CODE)
    phone.get_by_role("button", name="装表完成").click()
    expect(phone.locator("#order-outbox")).to_be_hidden()
    # The completion names what still stops the installation, in the server's words in the
    # page's language: no kit was issued from a depot for this order yet.
    expect(phone.locator('#completion li[data-code="kit_issued"]')).to_have_text(
        "电能表已安装 · 本工单尚未从仓库领取套件"
    )
    assert live_server.stage(order_id) == Stage.contract_signed
    shot(phone, "flow-4-install-blocked-360")

    # The storekeeper (another person, another terminal) reserves the scheme's kit at the
    # depot and hands it over with the meter whose label the crew just scanned.
    issue_kit(live_server, order_id, meter_barcode=METER_CODE)
    phone.get_by_role("button", name="装表完成").click()
    expect(phone.locator(".step--active")).to_contain_text("竣工检验")
    assert live_server.stage(order_id) == Stage.installed
    shot(phone, "flow-4-installed-360")
    media = live_server.rows_of(MediaItem, order_id)
    assert sorted(m.kind.value for m in media) == [
        "barcode", "meter_box", "seal", "signature", "site", "wiring"
    ]
    (barcode,) = [m for m in media if m.kind.value == "barcode"]
    assert barcode.scanned_value == METER_CODE

    # 5. The completion checklist card: limits beside each measurement, failing inline.
    phone.goto(f"/app/#/order/{order_id}")
    expect(phone.locator(".step--active")).to_contain_text("竣工检验")
    expect(phone.locator("#checklist-form")).to_be_visible()
    expect(phone.locator("#item-earthing_resistance-limit")).to_contain_text("不大于 4 Ω")
    phone.locator("#item-earthing_resistance").fill("6.5")
    expect(phone.locator("#item-earthing_resistance-error")).to_contain_text("不合格")
    expect(phone.locator("#item-earthing_resistance")).to_have_attribute("aria-invalid", "true")
    audit(phone)
    shot(phone, "flow-5-checklist-failing-360")
    phone.locator("#item-earthing_resistance").fill("3.2")
    expect(phone.locator("#item-earthing_resistance-error")).to_be_hidden()
    scheme_values = phone.evaluate(
        f"FO.api('GET', '/app/api/work-orders/{order_id}/checklist-card')"
        ".then(c => c.scheme_values)"
    )
    phone.locator("#item-insulation_resistance").fill("12.5")
    phone.locator("#item-meter_height").fill("1.5")
    phone.locator("#item-wiring_correct").select_option("true")
    phone.locator("#item-cable_section").fill(str(scheme_values["scheme_cable_section_mm2"]))
    phone.locator("#item-breaker_rating").fill(str(scheme_values["scheme_breaker_rating_a"]))
    phone.locator("#item-seal_numbers").fill("SG-0001, SG-0002")
    # The photos taken at installation already count as the card's evidence.
    expect(phone.locator('[data-evidence="photo_seal"]')).to_contain_text("1/1")
    phone.get_by_role("button", name="提交检验").click()
    expect(phone.locator('#result-box [data-phase="before_energising"]')).to_contain_text(
        "验收通过"
    )
    assert live_server.stage(order_id) == Stage.inspected
    shot(phone, "flow-6-result-360")

    # 6. With the supply on: the second half of the card moves the order to energised.
    phone.goto(f"/app/#/order/{order_id}/checklist")
    phone.locator("#item-terminal_voltage").fill("250")
    expect(phone.locator("#item-terminal_voltage-error")).to_contain_text("198–235.4 V")
    phone.locator("#item-terminal_voltage").fill("226")
    phone.locator("#item-rcd_trip_time").fill("28")
    phone.locator("#item-meter_registering").select_option("true")
    phone.locator("#item-photo_meter_after").set_input_files(str(FIXTURES / "site.jpg"))
    expect(phone.locator('[data-evidence="photo_meter_after"]')).to_contain_text("1/1")
    phone.get_by_role("button", name="提交检验").click()
    expect(phone.locator('#result-box [data-phase="supply_on"]')).to_contain_text("验收通过")
    expect(phone.locator("#result-stage")).to_have_text("已送电")
    # The last completion call closes the visit; nothing is left missing.
    expect(phone.locator("#completion")).to_have_count(0)
    phone.get_by_role("button", name="完成本步并推进工单").click()
    expect(phone.locator("#completion")).to_contain_text("一次上门作业已完成")
    expect(phone.locator("#completion li")).to_have_count(0)
    audit(phone)
    shot(phone, "flow-7-energised-360")

    # One order, one visit: every stage from the survey to energising, in the visit.
    assert live_server.stage(order_id) == Stage.energised
    (visit,) = live_server.rows_of(Visit, order_id)
    assert visit.outcome == VisitOutcome.completed
    assert visit.stages_done == [
        "surveyed", "scheme_answered", "contract_signed", "installed", "inspected", "energised"
    ]


def issue_kit(live_server: LiveServer, order_id: int, *, meter_barcode: str) -> None:
    """The storekeeper's two API calls: reserve the order's kit, then issue it with the meter."""
    headers = {"Authorization": f"Bearer {live_server.tokens['storekeeper']}"}
    reserved = httpx.post(
        f"{live_server.url}/work-orders/{order_id}/kit-reservations",
        json={"depot_code": DEPOT[0]},
        headers=headers,
    )
    assert reserved.status_code == 201, reserved.text
    issued = httpx.post(
        f"{live_server.url}/kit-reservations/{reserved.json()['id']}/issue",
        json={"meter_barcode": meter_barcode},
        headers=headers,
    )
    assert issued.status_code == 200, issued.text
