"""kill -9 of a real server, then a restart: nothing is left behind, nothing stays stuck.

A server (``uvicorn field_api.main:create_app --factory``, on a socket this test bound to
127.0.0.1 and a free port) is killed with SIGKILL while:

(a) a large multipart photo upload is streaming into a temporary file of the media store;
(b) two photos are acknowledged (201) but their analysis is still pending (this server does
    not analyse in process), one of them claimed by the server's analysis lease;
(c) a JSON request with an Idempotency-Key is executing (its handler waits on a calendar
    override file that is a named pipe nobody writes).

A second server on the same socket, analysing in process with its job worker thread on, must
put it all right as its worker starts (every periodic job is due at once): no temporary file left, no photo pending, and the
retried Idempotency-Key executes afresh rather than answering 409 forever.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from field_api.common import owners
from field_api.common.storage import temp_owner
from field_api.config import Settings
from field_api.db import make_engine, make_session_factory, read_session
from field_api.idempotency.models import IdempotencyRecord
from field_api.leases import service as leases
from field_api.leases.models import Lease
from field_api.media.models import AnalysisState, MediaItem
from tests.builders import auth
from tests.field_api.media.imaging import BRIGHTON_18, BRIGHTON_25
from tests.field_api.media.support import Crews

PEPPER = "test-pepper-0123456789"
DEADLINE_S = 30.0
MIB = 1024 * 1024


def _wait_for(what: str, condition: Callable[[], bool], *, timeout_s: float = DEADLINE_S) -> None:
    """Poll a condition until it holds (a deadline, not a timing assumption)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Server:
    """A uvicorn process serving the app on a listening socket the test owns."""

    def __init__(self, listener: socket.socket, env: dict[str, str], log: Path) -> None:
        self.listener = listener
        self.log = log
        fd = listener.fileno()
        with log.open("ab") as out:  # the child writes to its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "field_api.main:create_app", "--factory",
                 "--fd", str(fd), "--no-access-log"],
                env=env,
                pass_fds=(fd,),
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def url(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def wait_ready(self) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text(errors='replace')}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for("the server to answer /healthz", healthy)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()  # reaped: a zombie would still look alive in /proc

    def stop(self) -> None:
        """SIGTERM: a graceful shutdown (uvicorn re-raises the signal once it is done)."""
        self.proc.terminate()
        assert self.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        log = self.log.read_text(errors="replace")
        assert "Application shutdown complete" in log
        assert "did not stop" not in log  # the maintenance thread ended with the lifespan


@contextmanager
def _servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()


def _start_streaming_upload(url: str, order_id: int, token: str) -> socket.socket:
    """Send a 20 MiB multipart photo upload's headers and first MiB, and keep it open."""
    host, port = url.removeprefix("http://").split(":")
    boundary = "crash-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="client_id"\r\n\r\n'
        f"{uuid.uuid4()}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nsite\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + 20 * MIB + len(tail)
    request = (
        f"POST /work-orders/{order_id}/media HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(request + head + b"\xff\xd8\xff\xe0" + bytes(MIB))
    return sock


def _upload(client: httpx.Client, order_id: int, token: str, photo: Path) -> dict[str, Any]:
    r = client.post(
        f"/work-orders/{order_id}/media",
        data={"client_id": str(uuid.uuid4()), "kind": "site"},
        files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _pending(factory: sessionmaker[Session]) -> int:
    with read_session(factory) as s:  # a reader: never waits for the server's write lock
        query = select(func.count()).where(MediaItem.analysis == AnalysisState.pending)
        return int(s.execute(query).scalar_one())


def _idempotency_record(factory: sessionmaker[Session], key: str) -> IdempotencyRecord | None:
    with read_session(factory) as s:
        return s.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.key == key)
        ).scalar_one_or_none()


@pytest.mark.timeout(120)
def test_a_killed_server_leaves_nothing_behind_after_a_restart(
    committed_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    media_dir = tmp_path / "media"
    settings = Settings(
        env="test",
        database_url=committed_url,
        media_dir=media_dir,
        token_pepper=PEPPER,
        signing_key_path=tmp_path / "keys" / "signing.key",
    )
    engine = make_engine(committed_url)
    factory = make_session_factory(engine)
    with factory() as session:
        crews = Crews(session, settings)  # two crews with orders and tokens, committed
    order_id, token = crews.order.id, crews.token_a

    blocked_calendar = tmp_path / "calendar-override.yaml"
    os.mkfifo(blocked_calendar)  # a read blocks until someone writes: nobody will
    base_env = {
        **os.environ,  # the test process's audit keys (tests/conftest.py) among them
        "FIELDOPS_ENV": "test",
        "FIELDOPS_DATABASE_URL": committed_url,
        "FIELDOPS_MEDIA_DIR": str(media_dir),
        "FIELDOPS_TOKEN_PEPPER": PEPPER,
        "FIELDOPS_SIGNING_KEY_PATH": str(tmp_path / "keys" / "signing.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
    }
    first_env = {
        **base_env,
        "FIELDOPS_MEDIA_ANALYSE_IN_PROCESS": "false",
        "FIELDOPS_CALENDAR_OVERRIDE_PATH": str(blocked_calendar),
    }
    second_env = {
        **base_env,
        "FIELDOPS_MEDIA_ANALYSE_IN_PROCESS": "true",
        "FIELDOPS_WORKER_IN_PROCESS": "true",  # its worker runs every periodic job at start
    }
    listener = socket.socket()
    request.addfinalizer(listener.close)
    request.addfinalizer(engine.dispose)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.set_inheritable(True)
    idem_key = f"crash-{uuid.uuid4()}"
    pause_url = f"/work-orders/{order_id}/pauses"
    pause_body = {"reason": "customer_absent"}
    temp_dir = media_dir / "tmp"

    with _servers() as servers:
        first = Server(listener, first_env, tmp_path / "server-1.log")
        servers.append(first)
        first.wait_ready()
        server_owner = owners.owner_of_pid(first.proc.pid)
        assert server_owner is not None
        with httpx.Client(base_url=first.url, timeout=30) as client:
            # (b) acknowledged photos, analysis pending
            photos = [_upload(client, order_id, token, p) for p in (BRIGHTON_18, BRIGHTON_25)]
            assert [p["analysis"] for p in photos] == ["pending", "pending"]
        with factory.begin() as s:  # the server was analysing the first one when it died
            assert leases.claim(
                s, "media.analyse", str(photos[0]["id"]), ttl_s=3600,
                owner=f"{server_owner}#analyse-0",
            )  # fmt: skip

        # (a) a large upload streaming
        upload = _start_streaming_upload(first.url, order_id, token)
        try:
            _wait_for(
                "the upload's temporary file",
                lambda: any(p.stat().st_size > 0 for p in temp_dir.glob("*.part")),
            )
            [part] = list(temp_dir.glob("*.part"))
            assert temp_owner(part.name) == server_owner  # named after the process writing it

            # (c) an Idempotency-Key request executing at the kill
            answers: list[BaseException | httpx.Response] = []
            headers = auth(token, **{"Idempotency-Key": idem_key})

            def in_flight() -> None:
                try:
                    answers.append(
                        httpx.post(
                            f"{first.url}{pause_url}", json=pause_body, headers=headers, timeout=60
                        )
                    )
                except BaseException as exc:  # the connection dies with the server
                    answers.append(exc)

            caller = threading.Thread(target=in_flight)
            caller.start()
            _wait_for(
                "the Idempotency-Key to be claimed",
                lambda: _idempotency_record(factory, idem_key) is not None,
            )

            first.kill()
        finally:
            upload.close()
        caller.join(timeout=30)
        assert len(answers) == 1 and isinstance(answers[0], httpx.HTTPError)

        # what the crash left
        assert part.exists()
        assert _pending(factory) == 2
        record = _idempotency_record(factory, idem_key)
        assert record is not None and record.status_code is None  # it was executing
        assert record.owner == server_owner

        second = Server(listener, second_env, tmp_path / "server-2.log")
        servers.append(second)
        second.wait_ready()

        def recovered() -> bool:
            with read_session(factory) as s:
                leased = s.execute(
                    select(func.count()).where(Lease.kind == "media.analyse")
                ).scalar_one()
            return not list(temp_dir.glob("*.part")) and _pending(factory) == 0 and not leased

        _wait_for("the starting worker to recover", recovered)

        with httpx.Client(base_url=second.url, timeout=30) as client:
            for photo in photos:
                r = client.get(f"/media/{photo['id']}", headers=auth(token))
                assert r.status_code == 200
                assert r.json()["analysis"] == "done"
            retried = client.post(
                pause_url, json=pause_body, headers=auth(token, **{"Idempotency-Key": idem_key})
            )
            assert retried.status_code == 201, retried.text  # executed afresh, not 409
            assert "idempotent-replayed" not in retried.headers
            again = client.post(
                pause_url, json=pause_body, headers=auth(token, **{"Idempotency-Key": idem_key})
            )
            assert again.status_code == 201
            assert again.headers.get("idempotent-replayed") == "true"
            assert again.json() == retried.json()
            pauses = client.get(pause_url, headers=auth(token))
            assert pauses.status_code == 200 and len(pauses.json()) == 1

        second.stop()
