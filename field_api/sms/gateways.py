"""What delivers a text message: the one :class:`SmsGateway` interface and its adapters.

- :class:`HttpGateway`: an Alibaba Cloud SMS (dysmsapi ``SendSms``) style HTTP API, RPC
  signed (:func:`field_api.sms.rules.rpc_signature`); ``{"Code": "OK"}`` is success, any other
  code or an HTTP error a failure. One total deadline per request (``FIELDOPS_SMS_TIMEOUT_S``).
- :class:`LoggingGateway`: development only (production refuses it): logs the message with the
  phone masked and codes and links redacted; the development outbox shows it whole.
- Tests and tools install their own (:func:`install`), e.g. a recording gateway, or point the
  http gateway at :mod:`field_api.sms.fake_gateway`.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Protocol, TypeVar

from field_api.common import clock
from field_api.config import Settings, SmsSettings
from field_api.privacy import mask_phone, redact_codes, redact_links
from field_api.sms.rules import SmsTemplate, rpc_signature

logger = logging.getLogger(__name__)

API_VERSION = "2017-05-25"
T = TypeVar("T")


class SmsSendFailed(RuntimeError):
    """The gateway did not take the message (the job retries it)."""


@dataclass(frozen=True)
class SmsMessage:
    """One message to send: the number, the kind, its parameters and the rendered text."""

    phone: str
    template: SmsTemplate
    params: Mapping[str, str]
    text: str = field(repr=False)

    def __repr__(self) -> str:  # never a number, a code or a link in a traceback
        return f"SmsMessage(phone={mask_phone(self.phone)!r}, template={self.template.value!r})"


class SmsGateway(Protocol):
    """Whatever delivers an SMS; raises on a delivery failure."""

    def send(self, message: SmsMessage) -> None: ...


def loggable_sms(text: str) -> str:
    """An SMS as it may appear in a log: links cut to their path without the token and runs of
    four or more digits masked (one-time codes), in every environment."""
    return redact_codes(redact_links(text))


class LoggingGateway:
    """Development only: logs the message (phone masked, codes and links redacted)."""

    keeps_sent = True  # the development outbox keeps the newest sent messages readable

    def send(self, message: SmsMessage) -> None:
        logger.info("SMS to %s: %s", mask_phone(message.phone), loggable_sms(message.text))


class HttpGateway:
    """An Alibaba Cloud ``SendSms``-style gateway over HTTP (POST, form-encoded, RPC signed)."""

    keeps_sent = False

    def __init__(self, cfg: SmsSettings) -> None:
        if not (cfg.endpoint and cfg.access_key_id and cfg.access_key_secret and cfg.sign_name):
            raise ValueError("the http SMS gateway needs FIELDOPS_SMS_ENDPOINT, keys, sign name")
        self.endpoint = cfg.endpoint
        self.access_key_id = cfg.access_key_id
        self._secret = cfg.access_key_secret
        self.sign_name = cfg.sign_name
        self.timeout_s = cfg.timeout_s
        self.templates = {
            SmsTemplate.otp: cfg.template_otp,
            SmsTemplate.progress: cfg.template_progress,
            SmsTemplate.visit: cfg.template_visit,
            SmsTemplate.outage: cfg.template_outage,
        }

    def __repr__(self) -> str:
        return f"HttpGateway(endpoint={self.endpoint!r}, access_key_id={self.access_key_id!r})"

    def request_params(self, message: SmsMessage) -> dict[str, str]:
        """The signed form of one ``SendSms`` request."""
        template_code = self.templates.get(message.template)
        if not template_code:
            raise SmsSendFailed(f"no template id for {message.template.value} messages")
        params = {
            "Action": "SendSms",
            "Version": API_VERSION,
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "AccessKeyId": self.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": secrets.token_hex(16),
            "Timestamp": clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "PhoneNumbers": message.phone,
            "SignName": self.sign_name,
            "TemplateCode": template_code,
            "TemplateParam": json.dumps(dict(message.params), ensure_ascii=False),
        }
        params["Signature"] = rpc_signature(self._secret.get_secret_value(), "POST", params)
        return params

    def send(self, message: SmsMessage) -> None:
        import httpx

        params = self.request_params(message)
        deadline = _Deadline(self.timeout_s)
        try:
            with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
                response = deadline.run(lambda: client.post(self.endpoint, data=params))
        except (httpx.HTTPError, TimeoutError) as exc:
            raise SmsSendFailed(f"the SMS gateway did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise SmsSendFailed(f"the SMS gateway answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SmsSendFailed("the SMS gateway answered something else than JSON") from exc
        answer: dict[str, object] = body if isinstance(body, dict) else {}
        code = str(answer.get("Code", ""))
        if code != "OK":
            said = redact_codes(str(answer.get("Message", ""))[:200])
            raise SmsSendFailed(f"the SMS gateway refused the message: Code={code!r} {said}")


class _Deadline:
    """Runs a request in a thread and stops waiting after ``seconds`` in total (httpx's own
    timeouts bound each read, not a trickling answer)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, call: Callable[[], T]) -> T:
        values: list[T] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                values.append(call())
            except BaseException as exc:  # handed to the caller
                errors.append(exc)

        worker = threading.Thread(target=target, name="fieldops-sms-request", daemon=True)
        worker.start()
        worker.join(self.seconds)
        if worker.is_alive():
            raise TimeoutError(f"no complete answer within {self.seconds:.0f} s")
        if errors:
            raise errors[0]
        return values[0]


_override: SmsGateway | None = None
_override_lock = threading.Lock()


def install(gateway: SmsGateway | None) -> SmsGateway | None:
    """Use ``gateway`` for every message of this process (None: the configured one again);
    returns the one installed before (tests, tools)."""
    global _override
    with _override_lock:
        previous, _override = _override, gateway
    return previous


def gateway_for(settings: Settings) -> SmsGateway:
    """The installed gateway, else the one ``settings`` configure (``FIELDOPS_SMS_GATEWAY``)."""
    if _override is not None:
        return _override
    cfg = settings.sms
    if cfg.gateway == "http":
        key = ("sms.gateway", cfg.model_dump_json(), cfg.access_key_secret)
        gateway: SmsGateway = settings.built(key, lambda: HttpGateway(cfg))
        return gateway
    return LoggingGateway()


def keeps_sent(gateway: SmsGateway) -> bool:
    """Whether sent messages stay readable for the development outbox (the log gateway and
    test gateways that say so): an operator gateway's messages are wiped once sent."""
    return bool(getattr(gateway, "keeps_sent", False))
