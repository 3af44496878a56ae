"""Webhook targets: public addresses only, checked at registration and again at delivery.

Resolution is the external seam: ``targets.resolve`` is replaced with a table of answers, so
a name can resolve to a public address at registration and to a private one at delivery
(DNS rebinding). Deliveries go to a real receiver on 127.0.0.1 through the checked address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from field_api.db import make_engine, make_session_factory
from field_api.errors import ValidationFailed
from field_api.tracking import sender, targets
from field_api.tracking import service as tracking
from field_api.tracking.models import WebhookDelivery
from field_api.tracking.rules import EventType
from field_api.work_orders import service as orders
from field_api.work_orders.rules import FLOW
from tests.builders import make_order
from tests.clocks import ChinaClock

from .conftest import Receiver

BAD_URLS = [
    ("http://127.0.0.1:8000/admin", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://localhost:9000/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:a00:1]/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://100.100.100.200/latest/meta-data/", "metadata"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.10/hook", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://169.254.10.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.251/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "public"),  # shared address space (carrier NAT)
    ("http://user:secret@hooks.example.com/", "credentials"),
    ("https://token@hooks.example.com/", "credentials"),
    ("ftp://hooks.example.com/", "https://"),
    ("http://hooks.example.com:99999/", "port"),
]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Answers of the resolver seam by host name; unknown names do not resolve."""
    answers: dict[str, list[str]] = {}

    def fake(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return answers[host]

    monkeypatch.setattr(targets, "resolve", fake)
    return answers


def _register(session: Session, url: str, *, allow_http: bool = True,
              allow_loopback: bool = False) -> object:
    return tracking.create_subscription(
        session, name="crm", url=url, events=[EventType.stage_changed], actor=None,
        allow_http=allow_http, allow_loopback=allow_loopback,
    )


@pytest.mark.parametrize(("url", "why"), BAD_URLS)
def test_bad_targets_are_refused_at_registration(
    session: Session, dns: dict[str, list[str]], url: str, why: str
) -> None:
    dns["hooks.example.com"] = ["93.184.216.34"]
    with pytest.raises(ValidationFailed) as caught:
        _register(session, url)
    assert why in str(caught.value.detail)
    assert caught.value.code == "webhook.url_invalid"


@pytest.mark.parametrize("url", [u for u, why in BAD_URLS if why not in ("loopback",)])
def test_the_development_loopback_switch_allows_loopback_only(
    session: Session, dns: dict[str, list[str]], url: str
) -> None:
    dns["hooks.example.com"] = ["93.184.216.34"]
    with pytest.raises(ValidationFailed):
        _register(session, url, allow_loopback=True)


def test_loopback_receivers_are_allowed_in_development(
    session: Session, dns: dict[str, list[str]]
) -> None:
    sub = _register(session, "http://127.0.0.1:9000/hook", allow_loopback=True)
    assert sub.url == "http://127.0.0.1:9000/hook"  # type: ignore[attr-defined]


def test_production_takes_https_to_public_addresses_only(
    session: Session, dns: dict[str, list[str]]
) -> None:
    dns["hooks.example.com"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    for url in ("https://169.254.169.254/", "http://hooks.example.com/", "https://[::1]/"):
        with pytest.raises(ValidationFailed):
            _register(session, url, allow_http=False)
    assert _register(session, "https://hooks.example.com/hook", allow_http=False)


def test_a_name_resolving_to_a_private_address_is_refused_at_registration(
    session: Session, dns: dict[str, list[str]]
) -> None:
    dns["intranet.example.com"] = ["93.184.216.34", "10.1.2.3"]  # one bad answer is enough
    with pytest.raises(ValidationFailed, match=r"resolves to 10\.1\.2\.3 is a private address"):
        _register(session, "https://intranet.example.com/hook")
    # a name that does not resolve yet is accepted: it is checked again at every delivery
    assert _register(session, "https://not-yet.example.com/hook")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5, trust_env=False) as client:
        yield client


def test_a_delivery_is_refused_when_the_name_now_resolves_to_a_private_address(
    committed_url: str,
    clock: ChinaClock,
    receiver: Receiver,
    http: httpx.Client,
    dns: dict[str, list[str]],
) -> None:
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
    url = f"http://hooks.example.test:{port}/hook"
    dns["hooks.example.test"] = ["127.0.0.1"]  # the local receiver (loopback allowed in tests)
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        _register(session, url, allow_loopback=True)
        order = make_order(session)
        orders.transition(session, order, FLOW[1], actor=None)
    policy = targets.TargetPolicy(https_only=False, allow_loopback=True)
    now = clock.now() + timedelta(minutes=1)

    first = sender.send_pending(factory, client=http, clock=lambda: now, targets_policy=policy)
    assert first.delivered == 1
    (request,) = receiver.requests
    # sent to the checked address, with the URL's own Host header
    assert request.headers["Host"] == f"hooks.example.test:{port}"

    dns["hooks.example.test"] = ["10.0.0.7"]  # the DNS answer changed (rebinding)
    with factory.begin() as session:
        orders.transition(session, session.merge(order), FLOW[2], actor=None)
    second = sender.send_pending(factory, client=http, clock=lambda: now, targets_policy=policy)
    assert (second.delivered, second.failed) == (0, 1)
    assert len(receiver.requests) == 1  # nothing reached any server
    with factory() as session:
        last = session.execute(
            select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(1)
        ).scalar_one()
        assert last.status == "pending"  # retried later: the name may point back
        assert last.last_error is not None
        assert "target refused" in last.last_error and "10.0.0.7 is a private" in last.last_error
    engine.dispose()


def test_payloads_carry_the_tracking_path_only_when_the_subscription_asks(
    committed_url: str,
    clock: ChinaClock,
    receiver: Receiver,
    http: httpx.Client,
) -> None:
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        for include in (False, True):
            tracking.create_subscription(
                session, name=f"crm-{include}", url=receiver.url + f"?path={include}",
                events=[EventType.stage_changed], actor=None, allow_http=True,
                include_tracking_path=include,
            )
        order = make_order(session)
        token = tracking.token_for(session, order).token
        orders.transition(session, order, FLOW[1], actor=None)
    now = clock.now() + timedelta(minutes=1)
    assert sender.send_pending(factory, client=http, clock=lambda: now).delivered == 2
    bodies = [json.loads(r.body) for r in receiver.requests]
    with_path = [b for b in bodies if "tracking_path" in b["order"]]
    without = [b for b in bodies if "tracking_path" not in b["order"]]
    assert len(with_path) == 1 and len(without) == 1
    assert with_path[0]["order"]["tracking_path"] == f"/t/{token}"
    assert token not in json.dumps(without[0])
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "zh", "en"),
    [
        ("http://169.254.169.254/x", "169.254.169.254 是云服务元数据地址", "is a cloud metadata"),
        ("http://10.0.0.1/x", "10.0.0.1 是内网地址", "10.0.0.1 is a private address"),
        ("ftp://hooks.example.com/x", "须以 https:// 开头", "must start with https://"),
    ],
)
def test_a_refused_target_is_told_in_each_language(
    session: Session, dns: dict[str, list[str]], url: str, zh: str, en: str
) -> None:
    """The reason travels as a message (code + params), not as English text in params."""
    from field_api import error_codes

    with pytest.raises(ValidationFailed) as caught:
        _register(session, url, allow_http=True)
    reason = caught.value.params["reason"]
    assert reason["code"].startswith("webhook_target.")
    assert zh in error_codes.render("webhook.url_invalid", caught.value.params, "zh-CN")
    assert en in error_codes.render("webhook.url_invalid", caught.value.params, "en")
