"""The default notifier only logs, with the phone masked."""

from __future__ import annotations

import logging

import pytest

from field_api.contracts.notifier import LoggingNotifier


def test_logs_masked_phone_and_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="field_api.contracts.notifier"):
        LoggingNotifier().send_sms("13812345678", "验证码 123456")
    assert "138****5678" in caplog.text
    assert "13812345678" not in caplog.text
    assert "123456" in caplog.text


def test_production_mode_masks_the_code(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="field_api.contracts.notifier"):
        LoggingNotifier(reveal_text=False).send_sms("13812345678", "验证码 123456")
    assert "123456" not in caplog.text
    assert "验证码 ******" in caplog.text
