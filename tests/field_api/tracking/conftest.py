"""Fixtures of the tracking tests: a settable server clock, the customers' phones (SMS) and a
real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from field_api.deadlines import hooks as deadline_hooks
from field_api.tracking import hooks as tracking_hooks
from tests.clocks import ChinaClock
from tests.sms_support import SmsInbox

CHINA = timezone(timedelta(hours=8))


@pytest.fixture
def clock(server_clock: ChinaClock) -> Iterator[ChinaClock]:
    server_clock.set_china(2025, 9, 29, 10, 0)
    deadline_hooks.install()
    tracking_hooks.install()
    yield server_clock


# The customers' phones: messages are queued, and reading them runs the sms queue's jobs.
RecordingNotifier = SmsInbox


@pytest.fixture
def sms(sms_inbox: SmsInbox) -> SmsInbox:
    return sms_inbox


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint: records requests, answers the scripted status codes (then 200)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    stop_after: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                state.requests.append(Received(dict(self.headers.items()), body))
                code = state.script.pop(0) if state.script else 200
                if state.stop_after is not None and len(state.requests) >= state.stop_after:
                    state.stop.set()
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()
