"""Sending text messages to customers, behind a small interface the deployment replaces."""

from __future__ import annotations

import logging
import re
from typing import Protocol

from field_api.privacy import mask_phone

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """Whatever delivers an SMS (an operator gateway in production)."""

    def send_sms(self, phone: str, text: str) -> None:
        """Deliver ``text`` to ``phone``; raise on a delivery failure."""
        ...


class LoggingNotifier:
    """The default notifier: it only logs, with the phone masked.

    With ``reveal_text=False`` (production) the digits of the message are masked too, so a
    one-time code never lands in a log file.
    """

    def __init__(self, *, reveal_text: bool = True) -> None:
        self.reveal_text = reveal_text

    def send_sms(self, phone: str, text: str) -> None:
        """Log the message instead of sending it."""
        shown = text if self.reveal_text else re.sub(r"\d", "*", text)
        logger.info("SMS to %s: %s", mask_phone(phone), shown)
