"""Tracking tokens, webhook signatures and retry backoff."""

from __future__ import annotations

import pytest

from field_api.tracking.rules import (
    RetryPolicy,
    new_tracking_token,
    sign,
    url_problem,
    verify,
)


def test_tracking_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_tracking_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 32 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_signature_verifies_and_rejects_tampering_and_replay() -> None:
    body = b'{"event":"stage_changed"}'
    header = sign("s3cret", 1_760_000_000, body)
    assert header.startswith("t=1760000000,v1=")
    assert verify("s3cret", header, body, now=1_760_000_010)
    assert not verify("s3cret", header, body + b" ", now=1_760_000_010)
    assert not verify("other", header, body, now=1_760_000_010)
    assert not verify("s3cret", header, body, now=1_760_000_000 + 301)
    assert not verify("s3cret", "garbage", body, now=1_760_000_000)


def test_backoff_doubles_up_to_the_cap_and_gives_up() -> None:
    policy = RetryPolicy(base_s=30, cap_s=600, max_attempts=5)
    assert [policy.delay_s(n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
    assert not policy.gives_up(4)
    assert policy.gives_up(5)


@pytest.mark.parametrize(
    ("url", "allow_http", "ok"),
    [
        ("https://example.test/hook", False, True),
        ("http://127.0.0.1:9000/hook", True, True),
        ("http://example.test/hook", False, False),
        ("ftp://example.test", True, False),
    ],
)
def test_webhook_url_rules(url: str, allow_http: bool, ok: bool) -> None:
    assert (url_problem(url, allow_http=allow_http) is None) is ok
