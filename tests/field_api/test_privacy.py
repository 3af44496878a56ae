"""Masking of phone numbers: at most the last four digits show, whatever the format."""

from __future__ import annotations

import pytest

from field_api.privacy import mask_phone


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "*******5678"),
        ("26801234", "****1234"),  # an 8-digit landline (was 268*1234)
        ("2681234", "***1234"),
        ("0755-26801234", "********1234"),
        ("(0755) 2680 1234", "********1234"),
        ("+86 138 1234 5678", "*******5678"),
        ("+86-755-2680-1234", "*******1234"),
        ("0086 13812345678", "*******5678"),
        ("138-1234-5678", "*******5678"),
        ("95598", "*****"),
        ("", ""),
        (None, ""),
    ],
)
def test_every_phone_format_shows_at_most_its_last_four_digits(
    phone: str | None, masked: str
) -> None:
    assert mask_phone(phone) == masked
    digits_shown = [ch for ch in masked if ch.isdigit()]
    assert len(digits_shown) <= 4
