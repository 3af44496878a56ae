"""A crew completes a one-visit connection in the browser, step by step, on a 360 px phone."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import barcode
import httpx
from barcode.writer import ImageWriter
from playwright.sync_api import expect

from field_api.auth import service as auth_service
from field_api.contracts.models import Contract
from field_api.media.models import MediaItem
from field_api.schemes import service as schemes
from field_api.schemes.schemas import SchemeCreate
from field_api.visits.models import Visit
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage
from tests.web.support import FIXTURES, LiveServer, audit, shot, signed_in

METER_CODE = "3230001021500012345678"  # what tests/fixtures/web/meter-barcode.png encodes
OTHER_METER_CODE = "3230001021500012345685"  # a meter can be installed on one order only


def code128_png(value: str) -> bytes:
    """A clean Code 128 picture of ``value`` (python-barcode), as a meter label photo."""
    out = io.BytesIO()
    barcode.get("code128", value, writer=ImageWriter()).write(
        out, {"module_width": 0.3, "module_height": 12, "quiet_zone": 6, "write_text": False}
    )
    return out.getvalue()


def draw_signature(page: Any) -> None:
    box = page.locator("#signature-pad").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(box["x"] + 20 + i * 25, box["y"] + box["height"] * (0.3 + 0.04 * (i % 4)))
    page.mouse.up()


def test_crew_walks_an_order_from_arrival_to_the_installation(
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
    expect(phone.locator("#contract-status")).to_contain_text("验证码已发送至 139****9000")
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
    # The visit's completion names what still stops the installation: no kit was issued
    # from a depot for this order (the storekeeper's step, outside the crew app).
    expect(phone.locator('#completion li[data-code="kit_issued"]')).to_be_visible()
    assert live_server.stage(order_id) == Stage.contract_signed
    shot(phone, "flow-4-install-360")
    media = live_server.rows_of(MediaItem, order_id)
    assert sorted(m.kind.value for m in media) == ["barcode", "meter_box", "seal", "site", "wiring"]
    (barcode,) = [m for m in media if m.kind.value == "barcode"]
    assert barcode.scanned_value == METER_CODE
    (visit,) = live_server.rows_of(Visit, order_id)
    assert visit.stages_done[:3] == ["surveyed", "scheme_answered", "contract_signed"]


def installed_order(live_server: LiveServer) -> int:
    """An order installed earlier: accepted scheme, signed off, and its meter's barcode photo."""
    order_id = live_server.new_order(stage=Stage.surveyed)
    token = live_server.tokens["crew"]
    with live_server.session_factory.begin() as session:
        crew = auth_service.authenticate(session, token=token, settings=live_server.settings)
        schemes.request_scheme(session, order_id, SchemeCreate(laying_method="D1"), actor=crew)
        order = session.get_one(WorkOrder, order_id)
        for stage in (Stage.contract_signed, Stage.installed):
            orders.transition(session, order, stage, actor=None)
    response = httpx.post(  # the photo taken at installation, with what the scanner read
        f"{live_server.url}/work-orders/{order_id}/media",
        headers={"Authorization": f"Bearer {token}"},
        data={
            "client_id": str(uuid.uuid4()),
            "kind": "barcode",
            "scanned_value": OTHER_METER_CODE,
        },
        files={"file": ("meter.png", code128_png(OTHER_METER_CODE), "image/png")},
    )
    assert response.status_code == 201, response.text
    return order_id


def test_crew_fills_the_completion_check_with_limits_failing_inline(
    phone: Any, live_server: LiveServer
) -> None:
    order_id = installed_order(live_server)
    signed_in(phone, live_server.tokens["crew"])
    phone.goto(f"/app/#/order/{order_id}")
    expect(phone.locator(".step--active")).to_contain_text("竣工检验")
    card = phone.locator("#checklist-form")
    expect(card).to_be_visible()
    # Limits are shown beside each measurement; a value outside fails inline at once.
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
    for kind in ("site", "meter_box", "wiring", "seal"):
        phone.locator(f"#item-photo_{kind}").set_input_files(str(FIXTURES / "site.jpg"))
    expect(phone.locator('[data-evidence="photo_seal"]')).to_contain_text("1/1")
    phone.get_by_role("button", name="提交检验").click()
    expect(phone.locator('#result-box [data-phase="before_energising"]')).to_contain_text(
        "验收通过"
    )
    assert live_server.stage(order_id) == Stage.inspected
    shot(phone, "flow-6-result-360")

    # With the supply on: the second half of the card moves the order to energised.
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
    assert live_server.stage(order_id) == Stage.energised
