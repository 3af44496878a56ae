"""Sending text messages to customers, behind a small interface the deployment replaces."""

from __future__ import annotations

import logging
from typing import Protocol

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


class LoggingNotifier:
    """The default notifier: it only logs, with the phone masked and the text redacted.

    The log line never carries a tracking link's token or a one-time code, whatever the
    environment: logs are kept, shipped and read by people who must not sign for a customer or
    open their progress page. Tests and local tools that need the message itself install a
    recording notifier (``app.state.notifier`` or ``tracking.service.set_notifier``).
    """

    def send_sms(self, phone: str, text: str) -> None:
        """Log the message instead of sending it."""
        logger.info("SMS to %s: %s", mask_phone(phone), loggable_sms(text))
