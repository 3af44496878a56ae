"""Development: the crew app shows the latest signing code from GET /dev/sms beside the code
field (a newcomer without an SMS gateway can sign), and that code signs the contract."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from field_api.work_orders.rules import Stage
from tests.web.support import FIXTURES, LiveServer, signed_in
from tests.web.test_one_visit import draw_signature


def test_the_code_from_the_dev_outbox_is_shown_beside_the_field_and_signs(
    phone: Any, live_server: LiveServer
) -> None:
    # The live server's gateway keeps what it sent for the development outbox, as the log
    # gateway of a development server does; reading live_server.sms runs the queued SMS jobs.
    order_id = live_server.new_order()
    signed_in(phone, live_server.tokens["crew"])
    phone.goto(f"/app/#/order/{order_id}")
    phone.get_by_role("button", name="到达现场（记录位置）").click()
    expect(phone.locator("#visit-state")).to_contain_text("距工单位置 0 米")
    phone.locator("#photo-site").set_input_files(str(FIXTURES / "site.jpg"))
    expect(phone.locator('.photo__state[data-kind="site"]')).to_contain_text("已上传")
    phone.get_by_label("敷设方式").select_option("D1")
    phone.get_by_role("button", name="完成本步并推进工单").click()
    phone.get_by_role("button", name="申请供电方案").click()
    expect(phone.locator(".step--active")).to_contain_text("合同签署")

    phone.goto(f"/app/#/order/{order_id}/contract")
    phone.get_by_role("button", name="生成合同").click()
    expect(phone.locator("#contract-dev-code")).to_be_hidden()  # nothing sent yet
    phone.get_by_role("button", name="发送验证码到客户手机").click()
    expect(phone.locator("#contract-status")).to_contain_text("验证码已发送")
    sent = re.search(r"验证码：(\d+)", live_server.sms.sent[-1][1])  # the job worker sends it
    hint = phone.locator("#contract-dev-code")
    # the page asks the outbox again until the queued message has been sent
    expect(hint).to_contain_text("开发环境短信验证码：")
    assert sent is not None
    expect(hint).to_have_text(f"开发环境短信验证码：{sent.group(1)}")

    shown = re.search(r"(\d+)$", hint.inner_text())
    assert shown is not None
    draw_signature(phone)
    phone.get_by_label("短信验证码").fill(shown.group(1))
    phone.get_by_role("button", name="确认签署").click()
    expect(phone.locator(".step--active")).to_contain_text("装表与照片")
    assert live_server.stage(order_id) == Stage.contract_signed
