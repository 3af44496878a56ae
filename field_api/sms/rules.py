"""Pure rules of customer text messages: the templates and Alibaba Cloud's RPC signature.

Every message is a template kind with parameters. The gateway sends the kind's template id
and the parameters (the text lives at the operator, as the Chinese cloud SMS services want);
the same kind has a local zh-CN template here, rendered with the same parameters, for the log
(redacted) and the development outbox (whole).

The signature is Alibaba Cloud's "signature method V2 for RPC APIs" (HMAC-SHA1, version 1.0):
the parameters but ``Signature`` sorted by name, each name and value percent-encoded per RFC
3986 (unreserved ``A-Z a-z 0-9 - _ . ~`` kept, a space as ``%20``) and joined as
``name=value`` with ``&``; the string to sign is ``METHOD&%2F&`` followed by that query
percent-encoded again; the signature is base64(HMAC-SHA1(secret + "&", string to sign)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum
from urllib.parse import quote


class SmsState(StrEnum):
    pending = "pending"  # waiting for its job (ciphertexts kept)
    sent = "sent"  # the gateway took it
    dead = "dead"  # the job gave up: the ciphertexts are wiped, the message is lost


class SmsTemplate(StrEnum):
    """The kinds of message, each with one operator template id (``FIELDOPS_SMS_TEMPLATE_*``)."""

    otp = "otp"  # the contract's one-time signing code
    progress = "progress"  # a stage reached, with the tracking link
    visit = "visit"  # a planned visit's window
    outage = "outage"  # a planned outage's notice, its move or its cancellation


# The local zh-CN text of each kind (the sender's 【signature】 goes in front when rendered).
TEMPLATES: Mapping[SmsTemplate, str] = {
    SmsTemplate.otp: "您的供用电合同（{contract_no}）签署验证码：{code}，{minutes}分钟内有效。"
    "请勿告知他人；如非本人办理请忽略。",
    SmsTemplate.progress: "您的用电申请（工单{order_id}）进度：{stage}。查看进度：{link}",
    SmsTemplate.visit: "您的用电申请（工单{order_id}）已预约上门：{start}–{end}。",
    SmsTemplate.outage: "{notice}：您的户号{account}所在线路因{work}计划停电，"
    "停电时间{start}至{end}（北京时间），请提前做好准备。",
}

DEV_OUTBOX_SIZE = 50  # sent messages the log gateway keeps readable for GET /dev/sms


def render(template: SmsTemplate, params: Mapping[str, str], *, sender: str) -> str:
    """The message as the customer reads it: ``sender`` then the kind's text with ``params``."""
    return sender + TEMPLATES[template].format_map(dict(params))


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding as Alibaba Cloud's signature wants it."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, encoded ``name=value&...`` of every parameter but ``Signature``."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&<the canonical query, percent-encoded again>``."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def rpc_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """The ``Signature`` of an RPC request: base64 HMAC-SHA1 keyed with ``secret + "&"``."""
    digest = hmac.new(
        (secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(secret: str, method: str, params: Mapping[str, str]) -> bool:
    """Whether ``params["Signature"]`` is the signature of the other parameters."""
    given = params.get("Signature", "")
    return hmac.compare_digest(given, rpc_signature(secret, method, params))
