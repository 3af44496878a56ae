"""Webhook receivers on 127.0.0.1 for the delivery tests: one that answers at once (optionally
failing its first requests with 500) and one that trickles its answer a byte at a time.

Each records every request it got: the monotonic time it arrived, its event id and its JSON
body, so a test can check order, duplicates and delays.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() when the request was read in full
    event_id: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Log:
    """What a receiver got."""

    url: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, arrival: Arrival) -> int:
        with self.lock:
            self.arrivals.append(arrival)
            return len(self.arrivals)

    def snapshot(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def event_ids(self) -> list[str]:
        return [a.event_id for a in self.snapshot()]


@contextmanager
def answering(*, fail_first: int = 0) -> Iterator[Log]:
    """A receiver answering 500 to its first ``fail_first`` requests, then 200."""
    log = Log()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            n = log.add(
                Arrival(
                    time.monotonic(),
                    self.headers.get("X-Fieldops-Event-Id", ""),
                    json.loads(body),
                    dict(self.headers.items()),
                )
            )
            self.send_response(500 if n <= fail_first else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    log.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield log
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Trickler(Log):
    """A receiver that trickles its answer (one byte every ``every_s``) to its first
    ``trickles`` requests and answers the rest at once."""

    every_s: float = 2.0
    trickles: int = 1_000_000
    in_flight: threading.Event = field(default_factory=threading.Event)
    cut_short: int = 0  # trickled answers the client hung up on
    cut_at: list[float] = field(default_factory=list)  # when each hang-up showed
    stop: threading.Event = field(default_factory=threading.Event)


ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _read_request(conn: socket.socket) -> tuple[dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return headers, body


def _serve_one(conn: socket.socket, state: Trickler) -> None:
    with conn:
        try:
            headers, body = _read_request(conn)
        except (ConnectionError, OSError):
            return
        n = state.add(
            Arrival(time.monotonic(), headers.get("x-fieldops-event-id", ""), json.loads(body),
                    headers)
        )  # fmt: skip
        if n > state.trickles:
            conn.sendall(ANSWER)
            return
        state.in_flight.set()
        try:
            for i in range(len(ANSWER)):
                if state.stop.wait(state.every_s if i else 0):
                    return
                conn.sendall(ANSWER[i : i + 1])
        except OSError:  # the client hung up (its deadline, or it was killed)
            with state.lock:
                state.cut_short += 1
                state.cut_at.append(time.monotonic())
        finally:
            state.in_flight.clear()


@contextmanager
def trickling(*, every_s: float = 2.0, trickles: int = 1_000_000) -> Iterator[Trickler]:
    """A receiver answering a byte every ``every_s`` seconds (its first ``trickles`` requests)."""
    state = Trickler(every_s=every_s, trickles=trickles)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    state.url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"

    def accept() -> None:
        while not state.stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            # A hung-up client shows as a failed send at once, not after the kernel's buffers.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_serve_one, args=(conn, state), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        thread.join()
        listener.close()
