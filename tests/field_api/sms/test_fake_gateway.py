"""The fake gateway on loopback: it checks signatures, records messages, scripts failures and
shows what it got as JSON to other processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from field_api.config import SmsSettings
from field_api.sms.fake_gateway import FakeSmsGateway
from field_api.sms.gateways import HttpGateway, SmsMessage, SmsSendFailed
from field_api.sms.rules import SmsTemplate

MESSAGE = SmsMessage(
    phone="13812345678",
    template=SmsTemplate.otp,
    params={"contract_no": "HT-1", "code": "123456", "minutes": "5"},
    text="【供电服务】验证码：123456",
)


def _gateway(fake: FakeSmsGateway, **override: object) -> HttpGateway:
    values = {k.removeprefix("FIELDOPS_SMS_").lower(): v for k, v in fake.environment().items()}
    return HttpGateway(SmsSettings(**(values | override)))  # type: ignore[arg-type]


def test_a_signed_message_is_recorded_and_listed_as_json() -> None:
    with FakeSmsGateway() as fake:
        _gateway(fake).send(MESSAGE)
        assert fake.bad_signatures == 0
        listed = httpx.get(f"{fake.url}messages", timeout=5).json()
        assert fake.url.startswith("http://127.0.0.1:")
    assert listed == [
        {
            "phone": "13812345678",
            "template": "SMS_0001",
            "params": {"contract_no": "HT-1", "code": "123456", "minutes": "5"},
            "sign_name": "供电服务",
        }
    ]


def test_a_wrong_secret_is_refused_and_nothing_recorded() -> None:
    with FakeSmsGateway() as fake:
        with pytest.raises(SmsSendFailed, match="HTTP 400"):
            _gateway(fake, access_key_secret="not-the-secret").send(MESSAGE)
        assert fake.bad_signatures == 1 and fake.messages() == []


def test_scripted_failures_then_success() -> None:
    with FakeSmsGateway() as fake:
        gateway = _gateway(fake)
        fake.fail_next(1, status=503)
        with pytest.raises(SmsSendFailed, match="HTTP 503"):
            gateway.send(MESSAGE)
        r = httpx.post(f"{fake.url}control", json={"refuse_next": 1, "code": "isv.DAY_LIMIT"})
        assert r.status_code == 200
        with pytest.raises(SmsSendFailed, match=r"isv\.DAY_LIMIT"):
            gateway.send(MESSAGE)
        gateway.send(MESSAGE)
        assert len(fake.messages()) == 1 and fake.requests == 3


def test_an_unreachable_gateway_is_a_failure_without_the_number() -> None:
    with FakeSmsGateway() as fake:
        gateway = _gateway(fake)
    with pytest.raises(SmsSendFailed) as failed:
        gateway.send(MESSAGE)  # the fake has stopped: nothing listens there
    assert "13812345678" not in str(failed.value) and "123456" not in str(failed.value)


def test_the_secret_is_never_in_a_repr() -> None:
    with FakeSmsGateway() as fake:
        gateway = _gateway(fake)
        assert fake.secret not in repr(gateway) and fake.secret not in repr(fake)
        assert fake.secret not in repr(SmsSettings(access_key_secret=fake.secret))  # type: ignore[arg-type]


def test_a_trickling_gateway_cannot_stretch_the_deadline() -> None:
    # A gateway that answers one byte at a time: the request fails at its total deadline
    # instead of waiting as long as the gateway keeps sending.
    stop = threading.Event()

    class Trickle(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            while not stop.wait(0.2):  # the pace of the trickle, not a timing assertion
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with FakeSmsGateway() as fake:
            gateway = _gateway(
                fake, endpoint=f"http://127.0.0.1:{server.server_address[1]}/", timeout_s=1.0
            )
        with pytest.raises(SmsSendFailed, match="did not answer: TimeoutError"):
            gateway.send(MESSAGE)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_the_command_runs_a_fake_gateway_on_loopback(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "fieldops.cli", "sms", "fake-gateway", "--secret", "cli-secret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    ) as proc:
        _use_the_command(proc)


def _use_the_command(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(8))
        endpoint = lines["FIELDOPS_SMS_ENDPOINT"]
        assert endpoint.startswith("http://127.0.0.1:")
        assert "cli-secret" not in lines.values()  # a secret given is not echoed
        settings = {k.removeprefix("FIELDOPS_SMS_").lower(): v for k, v in lines.items()}
        settings["access_key_secret"] = "cli-secret"
        HttpGateway(SmsSettings(**settings)).send(MESSAGE)  # type: ignore[arg-type]
        listed = httpx.get(f"{endpoint}messages", timeout=10).json()
        assert [m["params"]["code"] for m in listed] == ["123456"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_replayed_request_is_refused() -> None:
    with FakeSmsGateway() as fake:
        params = _gateway(fake).request_params(MESSAGE)
        first = httpx.post(fake.url, data=params, timeout=10)
        again = httpx.post(fake.url, data=params, timeout=10)
    assert first.json()["Code"] == "OK"
    assert again.status_code == 400 and again.json()["Code"] == "SignatureNonceUsed"
    assert len(fake.messages()) == 1
