"""`fieldops serve --workers N`: several uvicorn worker processes, graceful shutdown, and the
refusal of several workers on SQLite in production.

Real servers on 127.0.0.1 (free ports), a file SQLite database in development; every wait is a
poll with a deadline, every load bounded in count.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from field_api.config import Settings
from field_api.db import make_engine, make_session_factory
from tests.builders import auth
from tests.field_api.media.imaging import mp4_bytes
from tests.field_api.media.support import Crews
from tests.sms_support import production_sms_environment

FIELDOPS = [sys.executable, "-m", "fieldops.cli"]
PEPPER = "serve-workers-pepper-0123456789"
DEADLINE_S = 90.0
TUS = {"Tus-Resumable": "1.0.0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, done: Callable[[], bool], limit_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)  # a poll interval, not a timing assumption


def _env(var: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FIELDOPS_DATABASE_URL": f"sqlite:///{var}/fieldops.db",
        "FIELDOPS_MEDIA_DIR": str(var / "media"),
        "FIELDOPS_TOKEN_PEPPER": PEPPER,
        "FIELDOPS_SIGNING_KEY_PATH": str(var / "keys" / "contract-signing.key"),
        "FIELDOPS_AUDIT_KEY_PATH": str(var / "keys" / "audit-chain.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH": str(var / "keys" / "audit-checkpoint.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(var / "audit-checkpoints"),
        "FIELDOPS_INSPECTIONS_DIR": str(var / "inspections"),
        **extra,
    }
    for name in ("FIELDOPS_ENV", "FIELDOPS_PUBLIC_BASE_URL", "FIELDOPS_LOG_LEVEL"):
        if name not in extra:
            env.pop(name, None)
    return env


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    var: Path
    crews: Crews

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Served]:
    """`fieldops serve --workers 2` on a migrated development database with two crews."""
    var = tmp_path / "var"
    var.mkdir()
    env = _env(var)
    done = subprocess.run(
        [*FIELDOPS, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    settings = Settings(
        database_url=env["FIELDOPS_DATABASE_URL"], media_dir=var / "media", token_pepper=PEPPER,
        signing_key_path=var / "keys" / "contract-signing.key",
        audit_key_path=var / "keys" / "audit-chain.key",
        audit_checkpoint_key_path=var / "keys" / "audit-checkpoint.key",
        audit_checkpoint_dir=var / "audit-checkpoints",
    )  # fmt: skip
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        crews = Crews(session, settings)
    engine.dispose()
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*FIELDOPS, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
             "--log-level", "info", "--graceful-timeout", "60"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", proc, log, var, crews)
    try:

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {served.output()}")
            try:
                return httpx.get(f"{served.url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for("the server to answer /healthz", healthy)
        # each worker binds its own socket after its application started (field_api.serving):
        # the port is served by both once both say they are running
        _wait_for("both workers to start", lambda: len(_started_pids(served.output())) == 2)
        _wait_for("both workers to listen", lambda: len(_listening_pids(served.output())) == 2)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _started_pids(log: str) -> set[str]:
    return set(re.findall(r"Started server process \[(\d+)\]", log))


def _listening_pids(log: str) -> set[str]:
    return set(re.findall(r"\[(\d+)\] Uvicorn running on http://", log))


def _answering_pids(log: str, path: str) -> set[str]:
    return set(re.findall(rf'\[(\d+)\] 127\.0\.0\.1:\d+ - "GET {re.escape(path)} HTTP', log))


@pytest.mark.timeout(300)
def test_two_workers_answer_with_one_public_base_url_and_a_sqlite_warning(
    two_workers: Served,
) -> None:
    served = two_workers
    output = served.output()
    assert "warning: 2 workers on SQLite: one writer at a time" in output
    parent = str(served.proc.pid)
    workers = _started_pids(output)
    assert len(workers) == 2 and parent not in workers

    # both worker processes answer (each access line names its process); bounded load
    def one_round() -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(lambda _: httpx.get(f"{served.url}/healthz").status_code,
                                  range(16)))  # fmt: skip
        assert codes == [200] * 16

    rounds = 0
    while _answering_pids(served.output(), "/healthz") != workers and rounds < 20:
        one_round()
        rounds += 1
    assert _answering_pids(served.output(), "/healthz") == workers

    # every worker builds tracking links on the address serve filled in (inherited environment)
    headers = auth(served.crews.token_a)
    path = f"/work-orders/{served.crews.order.id}/tracking"
    urls: set[str] = set()
    for _ in range(20):
        with httpx.Client() as fresh:  # a new connection each time: any worker may take it
            answer = fresh.get(f"{served.url}{path}", headers=headers)
        assert answer.status_code == 200, answer.text
        urls.add(answer.json()["url"])
    assert all(url.startswith(f"{served.url}/t/") for url in urls)


async def _bursts(port: int, bursts: int, size: int) -> list[int]:
    """``bursts`` times, ``size`` connections opened together, one request each; the client
    ports used."""
    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client_port = int(writer.get_extra_info("sockname")[1])
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        return client_port

    ports: list[int] = []
    for _ in range(bursts):
        ports += await asyncio.gather(*(one() for _ in range(size)))
    return ports


@pytest.mark.timeout(300)
def test_connections_opened_together_are_spread_over_the_workers(two_workers: Served) -> None:
    """Each worker listens on its own SO_REUSEPORT socket (field_api.serving): the kernel
    spreads a burst of connections over them. On uvicorn's one shared socket the worker that
    is running takes most bursts whole (16 of 16 in four of six bursts, measured)."""
    served = two_workers
    port = int(served.url.rsplit(":", 1)[1])
    ports = asyncio.run(_bursts(port, bursts=6, size=16))
    by_port: dict[int, str] = {}

    def all_logged() -> bool:
        by_port.update({int(p): pid for pid, p in re.findall(
            r'\[(\d+)\] 127\.0\.0\.1:(\d+) - "GET /healthz HTTP', served.output())})
        return all(p in by_port for p in ports)

    _wait_for("the access lines of the bursts", all_logged)
    served_by = Counter(by_port[p] for p in ports)
    assert set(served_by) == _started_pids(served.output()) == _listening_pids(served.output())
    # a fair coin for each of 96 connections: a share under 25 % is 4.9 standard deviations off
    assert min(served_by.values()) >= len(ports) // 4, served_by


@pytest.mark.timeout(300)
def test_a_second_server_on_a_taken_port_is_refused(two_workers: Served, tmp_path: Path) -> None:
    """SO_REUSEPORT would let a second server share the port (and its connections) silently:
    it is refused before any worker starts, and the first keeps answering."""
    served = two_workers
    port = served.url.rsplit(":", 1)[1]
    done = subprocess.run(
        [*FIELDOPS, "serve", "--host", "127.0.0.1", "--port", port, "--workers", "2"],
        env=_env(served.var), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"fieldops serve: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and "Started server process" not in done.stderr
    assert httpx.get(f"{served.url}/healthz", timeout=5).status_code == 200


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


@pytest.mark.timeout(300)
def test_sigterm_lets_an_upload_in_flight_finish(two_workers: Served) -> None:
    served = two_workers
    token = served.crews.token_a
    data = mp4_bytes(mdat_bytes=300_000)
    created = httpx.post(
        f"{served.url}/work-orders/{served.crews.order.id}/media/uploads",
        headers=auth(token, **TUS, **{
            "Upload-Length": str(len(data)),
            "Upload-Metadata": _meta(client_id=str(uuid.uuid4()), kind="wiring",
                                     filename="v.mp4"),
        }),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    part = served.var / "media" / "uploads" / f"{location.rsplit('/', 1)[1]}.part"
    body = data[:150_000]
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=DEADLINE_S) as sock:
        sock.sendall(head + body[:50_000])
        # the upload is under way: its first bytes reached the part file
        _wait_for("the first chunk on disk", lambda: part.is_file() and part.stat().st_size > 0)
        served.proc.send_signal(signal.SIGTERM)
        _wait_for("the workers to be told to stop",
                  lambda: "Received SIGTERM" in served.output())  # fmt: skip
        for start in range(50_000, len(body), 25_000):  # the rest, chunk by chunk
            sock.sendall(body[start : start + 25_000])
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 204 No Content", response[:500]
    assert b"upload-offset: 150000" in response.lower()
    assert part.stat().st_size == 150_000
    assert served.proc.wait(timeout=DEADLINE_S) == 0
    # and the server did stop accepting: nothing listens any more
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.url}/healthz", timeout=2.0)


def test_several_workers_on_sqlite_are_refused_in_production(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        FIELDOPS_ENV="production",
        FIELDOPS_PUBLIC_BASE_URL="https://connect.example.com",
        **production_sms_environment(tmp_path),  # refused before any message is sent
    )
    done = subprocess.run(
        [*FIELDOPS, "serve", "--port", str(_free_port()), "--workers", "2"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--workers 2 is refused in production on SQLite" in done.stderr
    assert "Started" not in done.stderr  # nothing was served


def test_production_without_a_public_base_url_is_refused_with_a_clear_line(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, FIELDOPS_ENV="production")
    done = subprocess.run(
        [*FIELDOPS, "serve", "--port", str(_free_port())],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "FIELDOPS_PUBLIC_BASE_URL is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_log_level_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [*FIELDOPS, "serve", "--port", str(_free_port()), "--log-level", "loud"],
        env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    flat = " ".join(done.stderr.replace("│", " ").split())  # the error box may wrap the line
    assert "'loud' is not one of critical, error, warning, info, debug, trace" in flat
