"""One-time codes: hashed, expiring, limited attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from field_api.contracts.otp import OneTimeCode, OtpOutcome, generate_code

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
PEPPER = "test-pepper"


def _issue(max_attempts: int = 3) -> tuple[OneTimeCode, str]:
    return OneTimeCode.issue(
        now=NOW, ttl=timedelta(minutes=5), max_attempts=max_attempts, pepper=PEPPER
    )


def test_codes_have_six_digits() -> None:
    codes = {generate_code() for _ in range(200)}
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(codes) > 150  # random, not a constant


def test_state_keeps_a_keyed_hash_never_the_code() -> None:
    state, code = _issue()
    assert code not in state.code_hash
    assert code not in state.salt
    assert len(state.code_hash) == 64


def test_right_code_is_accepted_once() -> None:
    state, code = _issue()
    assert state.attempt(code, now=NOW + timedelta(minutes=1), pepper=PEPPER) is OtpOutcome.accepted
    assert state.accepted_at == NOW + timedelta(minutes=1)
    assert state.attempt(code, now=NOW + timedelta(minutes=2), pepper=PEPPER) is OtpOutcome.used


def test_wrong_code_counts_attempts_until_exhausted() -> None:
    state, code = _issue(max_attempts=3)
    wrong = "000000" if code != "000000" else "111111"
    assert state.attempt(wrong, now=NOW, pepper=PEPPER) is OtpOutcome.wrong
    assert state.attempts_left == 2
    assert state.attempt(wrong, now=NOW, pepper=PEPPER) is OtpOutcome.wrong
    assert state.attempt(wrong, now=NOW, pepper=PEPPER) is OtpOutcome.wrong
    # Once exhausted even the right code is refused: a new code must be requested.
    assert state.attempt(code, now=NOW, pepper=PEPPER) is OtpOutcome.exhausted
    assert state.accepted_at is None


def test_code_expires() -> None:
    state, code = _issue()
    at_expiry = NOW + timedelta(minutes=5)
    assert state.attempt(code, now=at_expiry, pepper=PEPPER) is OtpOutcome.expired
    assert state.attempts == 0


def test_another_pepper_does_not_accept_the_code() -> None:
    state, code = _issue()
    assert state.attempt(code, now=NOW, pepper="other") is OtpOutcome.wrong


@pytest.mark.parametrize(("ttl", "attempts"), [(timedelta(0), 3), (timedelta(minutes=1), 0)])
def test_nonsense_settings_are_refused(ttl: timedelta, attempts: int) -> None:
    with pytest.raises(ValueError, match="must"):
        OneTimeCode.issue(now=NOW, ttl=ttl, max_attempts=attempts, pepper=PEPPER)
