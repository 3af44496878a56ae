"""The catalogue of non-error messages (field_api.messages): complete and consistent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from field_api import messages
from field_api.callbacks.rules import FlagKind, Irregularity
from field_api.deadlines.rules import default_time_limits
from field_api.media.rules import FlagCode


@pytest.mark.parametrize("key", sorted(messages.MESSAGES))
def test_every_message_has_both_languages_with_the_same_placeholders(key: str) -> None:
    templates = messages.MESSAGES[key]
    assert set(templates) == set(messages.LANGUAGES)
    assert all(t.strip() for t in templates.values())
    zh, en = templates["zh-CN"], templates["en"]
    assert messages.placeholders(zh) == messages.placeholders(en), key


def test_every_flag_code_has_a_message() -> None:
    keys = set(messages.MESSAGES)
    assert {f"media_flag.{c.value}" for c in FlagCode} <= keys
    review = {f"review_flag.{k.value}" for k in FlagKind if k != FlagKind.callback_irregularity}
    assert review <= keys
    assert {f"review_flag.{i.value}" for i in Irregularity} <= keys


def test_nested_messages_and_lists_render_in_the_same_language() -> None:
    why = [
        messages.Message("review_flag.satisfaction_low", {"satisfaction": 2, "at_most": 2}),
        messages.Message("review_flag.complained"),
    ]
    params = {"why": [m.as_dict() for m in why]}
    assert messages.render("review_flag.callback_unsatisfied", params, "zh-CN") == (
        "回访不满意：满意度 2 分（满分 5 分，2 分及以下为不满意）；客户投诉"
    )
    assert messages.render("review_flag.callback_unsatisfied", params, "en") == (
        "call-back unsatisfied: satisfaction 2 of 5 (unsatisfied at 2 or less); "
        "the customer complained"
    )
    mismatch = {"scanned": "A1", "decoded": ["B2", "C3"]}
    assert messages.render("media_flag.barcode_mismatch", mismatch, "zh-CN") == (
        "终端上报 A1，但照片显示 B2、C3"
    )
    assert messages.render("media_flag.barcode_mismatch", mismatch, "en") == (
        "the terminal sent A1 but the photo shows B2, C3"
    )


def test_unknown_language_falls_back_to_chinese_and_unknown_code_to_itself() -> None:
    assert messages.render("review_flag.complained", {}, "fr") == "客户投诉"
    assert messages.render("no.such_message", {}, "en") == "no.such_message"
    assert messages.render("media_flag.trailing_data", {}, "en").startswith("{trailing_bytes}")


def test_times_in_messages_are_china_time() -> None:
    assert messages.china_minute(datetime(2026, 12, 4, 17, 30, tzinfo=UTC)) == "2026-12-05 01:30"
    assert messages.china_minute(datetime(2026, 12, 4, 17, 30)) == "2026-12-05 01:30"  # naive: UTC


def test_every_configured_pause_reason_has_a_message() -> None:
    configured = default_time_limits().pause_reasons
    assert {f"pause_reason.{r}" for r in configured} <= set(messages.MESSAGES)
