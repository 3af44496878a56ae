"""Pure rules of customer progress: tracking tokens, webhook signatures, retry backoff.

Webhook requests carry::

    X-Fieldops-Event: <event type, see EventType>
    X-Fieldops-Event-Id: <uuid>           (the same on every retry: receivers deduplicate)
    X-Fieldops-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + raw body>[,v1=...]

During a secret rotation's overlap the header carries two ``v1`` values (the new secret's
first, then the old one's); a receiver accepts the request when any ``v1`` matches its secret.
Delivery is at least once: a sender stopped between the receiver's answer and the outbox
update sends that event again with the same id. The README's "Webhooks" section is the
subscriber's documentation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

SIGNATURE_HEADER = "X-Fieldops-Signature"
EVENT_HEADER = "X-Fieldops-Event"
EVENT_ID_HEADER = "X-Fieldops-Event-Id"
TOKEN_BYTES = 24  # 192 bits: not guessable, short enough for an SMS link


class EventType(StrEnum):
    """What a subscriber can be told about."""

    stage_changed = "stage_changed"
    visit_planned = "visit_planned"
    appointment_changed = "appointment_changed"  # a booked visit replaced by a new window
    appointment_cancelled = "appointment_cancelled"
    pause_started = "pause_started"  # the order's clocks stopped (a customer-caused wait)
    pause_ended = "pause_ended"
    due_date_changed = "due_date_changed"  # the governing clock's stored due date moved


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


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes, *, also: Sequence[str] = ()) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds): one ``v1``
    per secret, ``secret``'s first, then each of ``also`` (the previous secret during a
    rotation's overlap)."""
    macs = [_mac(s, timestamp, body) for s in (secret, *also)]
    return ",".join([f"t={timestamp}", *(f"v1={m}" for m in macs)])


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``.

    Any of the header's ``v1`` values may match (two during a secret rotation). Receivers use
    this (and our tests do); the time window stops replays of old requests.
    """
    pairs = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in pairs if k == "t"]
    given = [v for k, v in pairs if k == "v1"]
    if len(stamps) != 1 or not given:
        return False
    try:
        timestamp = int(stamps[0])
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for v in given)


def old_secret_expired(expires_at: datetime | None, now: datetime) -> bool:
    """Whether a rotated-out secret's overlap is over (it must then be forgotten)."""
    return expires_at is None or now >= expires_at


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

