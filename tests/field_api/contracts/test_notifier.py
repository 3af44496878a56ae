"""The development log gateway only logs: phone masked, links without tokens, codes masked."""

from __future__ import annotations

import logging

import pytest

from field_api.sms.gateways import LoggingGateway, SmsMessage, loggable_sms
from field_api.sms.rules import SmsTemplate

TRACKING_TOKEN = "Qx7-Zp_3kLmN0pQrStUvWxYzAbCdEfGh"
LOGGER = "field_api.sms.gateways"


def _message(text: str) -> SmsMessage:
    return SmsMessage(phone="13812345678", template=SmsTemplate.otp, params={}, text=text)


def test_logs_masked_phone_and_no_code(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        LoggingGateway().send(_message("验证码 123456，5分钟内有效"))
    assert "*******5678" in caplog.text
    assert "13812345678" not in caplog.text
    assert "123456" not in caplog.text
    assert "验证码 ******，5分钟内有效" in caplog.text


def test_tracking_link_is_logged_as_its_route(caplog: pytest.LogCaptureFixture) -> None:
    text = f"【供电服务】工单12进度：已送电。查看进度：https://track.example.cn/t/{TRACKING_TOKEN}"
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        LoggingGateway().send(_message(text))
    assert TRACKING_TOKEN not in caplog.text
    assert "track.example.cn" not in caplog.text
    assert "查看进度：/t/[redacted]" in caplog.text
    assert "工单12" in caplog.text  # short numbers (order ids) stay readable


def test_any_link_loses_query_and_token_like_segments() -> None:
    shown = loggable_sms(
        "请点击 http://x.example/sign/AbCdEfGhIjKlMnOpQr/start?code=654321#frag 完成签署"
    )
    assert shown == "请点击 /sign/[redacted]/start 完成签署"


def test_a_message_shows_no_number_nor_text_in_its_repr() -> None:
    shown = repr(_message("验证码：123456"))
    assert "13812345678" not in shown and "123456" not in shown
    assert "*******5678" in shown


def test_there_is_no_switch_that_reveals_the_text() -> None:
    with pytest.raises(TypeError):
        LoggingGateway(reveal_text=True)  # type: ignore[call-arg]
