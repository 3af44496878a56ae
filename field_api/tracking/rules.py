"""Pure rules of customer progress: tracking tokens, webhook signatures, retry backoff.

Webhook requests carry::

    X-Fieldops-Event: stage_changed | visit_planned
    X-Fieldops-Event-Id: <uuid>           (the same on every retry: receivers deduplicate)
    X-Fieldops-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + raw body>

Delivery is at least once: a sender stopped between the receiver's answer and the outbox
update sends that event again with the same id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

SIGNATURE_HEADER = "X-Fieldops-Signature"
EVENT_HEADER = "X-Fieldops-Event"
EVENT_ID_HEADER = "X-Fieldops-Event-Id"
TOKEN_BYTES = 24  # 192 bits: not guessable, short enough for an SMS link


class EventType(StrEnum):
    """What a subscriber can be told about."""

    stage_changed = "stage_changed"
    visit_planned = "visit_planned"


class DeliveryStatus(StrEnum):
    """Where an outbox row stands."""

    pending = "pending"
    delivered = "delivered"
    dead = "dead"


def new_tracking_token() -> str:
    """A random URL-safe token for the public tracking page."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_webhook_secret() -> str:
    """A random signing secret for one subscriber."""
    return secrets.token_hex(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``.

    Receivers use this (and our tests do); the time window stops replays of old requests.
    """
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: base, doubling per failed attempt, capped; dead after max."""

    base_s: float = 30.0
    cap_s: float = 6 * 3600.0
    max_attempts: int = 12

    def delay_s(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        if attempts < 1:
            return 0.0
        return float(min(self.cap_s, self.base_s * 2 ** (attempts - 1)))

    def gives_up(self, attempts: int) -> bool:
        """Whether the row is dead after ``attempts`` failed attempts."""
        return attempts >= self.max_attempts


def is_success(status_code: int) -> bool:
    """Any 2xx answer means delivered."""
    return 200 <= status_code < 300


def url_problem(url: str, *, allow_http: bool) -> str | None:
    """None when ``url`` is an acceptable webhook target, else why not."""
    lowered = url.lower()
    if lowered.startswith("https://"):
        return None
    if lowered.startswith("http://"):
        return None if allow_http else "webhook URLs must use https in production"
    return "webhook URL must start with https:// (or http:// outside production)"


def tracking_path(token: str) -> str:
    """The path of the public page (the SMS and the API put the base URL in front)."""
    return f"/t/{token}"
