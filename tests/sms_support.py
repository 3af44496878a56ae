"""The customers' phones in tests: a recording SMS gateway, and the ``sms`` queue's jobs run
through it (the job runner of field_api.workers, once, for the ``sms`` queue).

Services queue every customer message in the SMS outbox; a test that reads a message calls
:meth:`SmsInbox.deliver` (the properties below do it first), which runs the due ``sms.send``
jobs with the test's own session factory, so a message of an uncommitted test transaction is
delivered too and a rolled-back one never is.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from field_api import workers
from field_api.config import Settings, SmsSettings
from field_api.sms import gateways
from field_api.sms import service as sms
from field_api.sms.gateways import SmsMessage
from field_api.sms.rules import SmsTemplate


@dataclass
class RecordingGateway:
    """Takes every message (or fails each while ``fail`` is set); keeps them like the log
    gateway does, so the development outbox shows them."""

    messages: list[SmsMessage] = field(default_factory=list)
    fail: bool = False
    keeps_sent: bool = True

    def send(self, message: SmsMessage) -> None:
        if self.fail:
            raise ConnectionError("gateway down")
        self.messages.append(message)


@contextmanager
def recording_gateway() -> Iterator[RecordingGateway]:
    """Install a recording gateway for this process while the block runs."""
    gateway = RecordingGateway()
    previous = gateways.install(gateway)
    try:
        yield gateway
    finally:
        gateways.install(previous)


def deliver(factory: sessionmaker[Session], settings: Settings) -> int:
    """Run the ``sms.send`` jobs due now, once each; returns how many ran."""
    config = workers.config_of(settings, [], queues=[sms.QUEUE], tag="test-sms")
    worker = workers.make_worker(factory, settings, config, {sms.JOB_KIND: sms.send_job})
    return worker.run_until_idle()


@dataclass
class SmsInbox:
    """What customers received: reading it delivers the queued messages first."""

    factory: sessionmaker[Session]
    settings: Settings
    gateway: RecordingGateway

    def deliver(self) -> int:
        return deliver(self.factory, self.settings)

    @property
    def fail(self) -> bool:
        return self.gateway.fail

    @fail.setter
    def fail(self, value: bool) -> None:
        self.gateway.fail = value

    @property
    def sent(self) -> list[tuple[str, str]]:
        """(phone, text) of each message delivered, oldest first."""
        self.deliver()
        return [(m.phone, m.text) for m in self.gateway.messages]

    def code_for(self, phone: str) -> str:
        """The newest signing code sent to ``phone``."""
        self.deliver()
        return next(
            m.params["code"]
            for m in reversed(self.gateway.messages)
            if m.phone == phone and m.template == SmsTemplate.otp
        )

    def last_code(self) -> str:
        """The newest signing code sent to anyone."""
        self.deliver()
        return next(
            m.params["code"]
            for m in reversed(self.gateway.messages)
            if m.template == SmsTemplate.otp
        )


def production_sms(tmp_path: Path, *, endpoint: str = "https://sms.example.com/") -> SmsSettings:
    """A complete ``http`` gateway section with a provisioned key file under ``tmp_path``, as
    production needs (the endpoint is never called unless a test sends)."""
    key = tmp_path / "keys" / "sms.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    if not key.exists():
        key.write_text(secrets.token_hex(32) + "\n")
        key.chmod(0o600)
    return SmsSettings(
        gateway="http",
        endpoint=endpoint,
        access_key_id="test-key-id",
        access_key_secret=SecretStr("test-key-secret"),
        sign_name="供电服务",
        template_otp="SMS_0001",
        template_progress="SMS_0002",
        template_visit="SMS_0003",
        template_outage="SMS_0004",
        key_path=key,
    )


def production_sms_environment(tmp_path: Path, *, endpoint: str = "https://sms.example.com/") -> dict[str, str]:
    """The ``FIELDOPS_SMS_*`` variables of :func:`production_sms` (for a server process)."""
    cfg = production_sms(tmp_path, endpoint=endpoint)
    assert cfg.access_key_secret is not None
    return {
        "FIELDOPS_SMS_GATEWAY": "http",
        "FIELDOPS_SMS_ENDPOINT": endpoint,
        "FIELDOPS_SMS_ACCESS_KEY_ID": str(cfg.access_key_id),
        "FIELDOPS_SMS_ACCESS_KEY_SECRET": cfg.access_key_secret.get_secret_value(),
        "FIELDOPS_SMS_SIGN_NAME": str(cfg.sign_name),
        "FIELDOPS_SMS_TEMPLATE_OTP": str(cfg.template_otp),
        "FIELDOPS_SMS_TEMPLATE_PROGRESS": str(cfg.template_progress),
        "FIELDOPS_SMS_TEMPLATE_VISIT": str(cfg.template_visit),
        "FIELDOPS_SMS_TEMPLATE_OUTAGE": str(cfg.template_outage),
        "FIELDOPS_SMS_KEY_PATH": str(cfg.key_path),
    }
