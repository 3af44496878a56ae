"""Sending text messages to customers, behind a small interface the deployment replaces.

Outside production the default notifier also keeps every message in :data:`DEV_OUTBOX`, a
small in-memory list (newest first, phone masked, text in full) that ``GET /dev/sms``
(:mod:`field_api.devtools`) shows: on a development machine that is where a newcomer reads the
one-time signing code or a tracking link. The log line stays redacted in every environment.

Used by contracts (the signing code), tracking (links and visit notices) and
:mod:`field_api.devtools` (the outbox page).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from field_api.common import clock
from field_api.privacy import mask_phone, redact_codes, redact_links

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Whatever delivers an SMS (an operator gateway in production)."""

    def send_sms(self, phone: str, text: str) -> None:
        """Deliver ``text`` to ``phone``; raise on a delivery failure."""
        ...


def loggable_sms(text: str) -> str:
    """An SMS as it may appear in a log: links cut to their path without the token (a
    tracking link becomes ``/t/[redacted]``) and runs of four or more digits masked (one-time
    codes), in every environment."""
    return redact_codes(redact_links(text))


@dataclass(frozen=True)
class KeptSms:
    """One message in the development outbox: the phone is masked, the text is whole."""

    sent_at: datetime
    phone: str
    text: str


class SmsOutbox:
    """The last ``capacity`` messages, kept only while enabled (never in production).

    Process-wide, like the notifier itself: ``field_api.devtools.install`` enables it for a
    development or test application and disables (and empties) it for a production one.
    """

    def __init__(self, capacity: int = 50) -> None:
        self._kept: deque[KeptSms] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.enabled = False

    def enable(self, enabled: bool) -> None:
        """Keep messages from now on, or stop keeping them and forget those kept."""
        with self._lock:
            self.enabled = enabled
            if not enabled:
                self._kept.clear()

    def keep(self, phone: str, text: str) -> None:
        """Keep a sent message (phone masked) when enabled; otherwise do nothing."""
        if not self.enabled:
            return
        entry = KeptSms(sent_at=clock.now(), phone=mask_phone(phone), text=text)
        with self._lock:
            self._kept.append(entry)

    def messages(self) -> list[KeptSms]:
        """The kept messages, newest first."""
        with self._lock:
            return list(reversed(self._kept))

    def clear(self) -> None:
        """Forget every kept message."""
        with self._lock:
            self._kept.clear()


DEV_OUTBOX = SmsOutbox()


class LoggingNotifier:
    """The default notifier: it only logs, with the phone masked and the text redacted.

    The log line never carries a tracking link's token or a one-time code, whatever the
    environment: logs are kept, shipped and read by people who must not sign for a customer or
    open their progress page. Tests and local tools that need the message itself install a
    recording notifier (``app.state.notifier`` or ``tracking.service.set_notifier``). Outside
    production the whole message is also kept in :data:`DEV_OUTBOX` (``GET /dev/sms``).
    """

    def send_sms(self, phone: str, text: str) -> None:
        """Log the message instead of sending it (and keep it in the development outbox)."""
        logger.info("SMS to %s: %s", mask_phone(phone), loggable_sms(text))
        DEV_OUTBOX.keep(phone, text)
