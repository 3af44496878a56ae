"""Two `fieldops serve` processes, one PostgreSQL database, one S3 bucket (order 15, item 4).

Server A and server B run on their own free ports on 127.0.0.1, each with its own media folder
(temporary files only), sharing the database (a fresh PostgreSQL database for this test), the
SeaweedFS bucket of the ``s3_server`` fixture (under a key prefix of this test's own), the key
files and the token pepper. After `fieldops db upgrade` and `fieldops demo load --months 1`:

- a contract is signed on A (the README walk-through's blocks, run against A: the OTP read from
  the development SMS outbox `/dev/sms`) and its PDF downloaded from B has the same sha256;
- a tus upload is begun on A (POST and the first PATCH) and finished on B (the remaining
  PATCHes); the media item and its bytes are readable from both.

Every wait is a poll with a deadline; both servers are stopped in teardown and their logs are
printed when the test fails.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import s3server
from tests.field_api.media.imaging import mp4_bytes
from tests.test_readme_walkthrough import README, ROOT, walkthrough_blocks

FIELDOPS = [sys.executable, "-m", "fieldops.cli"]
PEPPER = "two-servers-pepper-0123456789"
CREW = {"Authorization": "Bearer fo_demo_crew_a_000000000000000"}
TUS = {"Tus-Resumable": "1.0.0"}
MIB = 1024 * 1024
START_DEADLINE_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def _shared_env(tmp_path: Path, db_url: str, s3: s3server.S3Server) -> dict[str, str]:
    """What both servers share: database, bucket (a prefix of this test's own), keys, pepper."""
    storage = s3.settings(prefix=f"two-{secrets.token_hex(4)}/")
    keys = tmp_path / "keys"
    env = {
        **os.environ,
        "FIELDOPS_DATABASE_URL": db_url,
        "FIELDOPS_TOKEN_PEPPER": PEPPER,
        "FIELDOPS_SIGNING_KEY_PATH": str(keys / "contract-signing.key"),
        "FIELDOPS_AUDIT_KEY_PATH": str(keys / "audit-chain.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH": str(keys / "audit-checkpoint.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(tmp_path / "audit-checkpoints"),
        "FIELDOPS_INSPECTIONS_DIR": str(tmp_path / "inspections"),
        "FIELDOPS_MEDIA_DIR": str(tmp_path / "media-cli"),
        "FIELDOPS_PUBLIC_BASE_URL": "https://connect.example.com",
        "FIELDOPS_STORAGE_BACKEND": "s3",
        "FIELDOPS_S3_ENDPOINT_URL": storage["endpoint_url"],
        "FIELDOPS_S3_BUCKET": storage["bucket"],
        "FIELDOPS_S3_REGION": storage["region"],
        "FIELDOPS_S3_ACCESS_KEY_ID": storage["access_key_id"],
        "FIELDOPS_S3_SECRET_ACCESS_KEY": storage["secret_access_key"],
        "FIELDOPS_S3_PATH_STYLE": "true",
        "FIELDOPS_S3_PREFIX": storage["prefix"],
    }
    env.pop("FIELDOPS_ENV", None)  # development: the demo tokens and GET /dev/sms exist
    env.pop("FIELDOPS_LOG_LEVEL", None)
    return env


def _run(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run(
        [*FIELDOPS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"fieldops {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


def _start(name: str, env: dict[str, str], tmp_path: Path) -> Server:
    port = _free_port()
    log = tmp_path / f"serve-{name}.log"
    own = {**env, "FIELDOPS_MEDIA_DIR": str(tmp_path / f"media-{name}")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*FIELDOPS, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=own, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Server(name, f"http://127.0.0.1:{port}", proc, log)


def _await_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        if server.proc.poll() is not None:
            raise AssertionError(f"server {server.name} exited:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server.name} did not answer /healthz in time")
        time.sleep(0.1)  # a poll interval; the deadline bounds the wait


@pytest.fixture
def two_servers(
    request: pytest.FixtureRequest, tmp_path: Path, s3_server: s3server.S3Server
) -> Iterator[tuple[Server, Server]]:
    """Servers A and B on one fresh PostgreSQL database and one bucket, migrated, demo loaded."""
    dbs = request.getfixturevalue("pg_databases")
    if dbs is None:
        pytest.fail(
            "FIELDOPS_TEST_DATABASE_URL is not set: the two-process test needs PostgreSQL "
            "(make test sets it)",
            pytrace=False,
        )
    env = _shared_env(tmp_path, dbs.create("two"), s3_server)
    _run(env, tmp_path, "db", "upgrade")
    _run(env, tmp_path, "demo", "load", "--months", "1")
    servers = (_start("a", env, tmp_path), _start("b", env, tmp_path))
    try:
        for server in servers:
            _await_healthy(server)
        yield servers
    finally:
        for server in servers:
            server.stop()
        for server in servers:  # captured: pytest shows it only when the test fails
            print(f"----- server {server.name} log -----\n{server.output()[-20_000:]}")


def _sign_contract_on(server: Server, tmp_path: Path) -> int:
    """The README walk-through up to the signed contract, against ``server``; the order's id."""
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    last = next(i for i, b in enumerate(blocks) if "/contract/signature" in b)
    script = "\n".join([*blocks[: last + 1], 'echo "order=$ORDER"'])
    work = tmp_path / "walk"
    work.mkdir()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={
            **os.environ, "BASE": server.url, "TMPDIR": str(work),
            "VENV": str(Path(sys.executable).parent.parent),
        },
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    found = re.search(r"^order=(\d+)$", done.stdout, re.M)
    assert found is not None, done.stdout
    return int(found.group(1))


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _patch(server: Server, location: str, offset: int, chunk: bytes) -> httpx.Response:
    headers = {
        **CREW, **TUS, "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }  # fmt: skip
    return httpx.patch(f"{server.url}{location}", content=chunk, headers=headers, timeout=60)


def _upload_across(a: Server, b: Server, order_id: int, data: bytes) -> str:
    """POST and the first PATCH on ``a``, the remaining PATCHes on ``b``; the media item's URL."""
    meta = _meta(client_id=str(uuid.uuid4()), kind="wiring", filename="v.mp4",
                 sha256=hashlib.sha256(data).hexdigest())  # fmt: skip
    created = httpx.post(
        f"{a.url}/work-orders/{order_id}/media/uploads",
        headers={**CREW, **TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
    )
    assert created.status_code == 201, created.text
    location = httpx.URL(created.headers["location"]).path
    first = 3 * MIB  # smaller than an S3 part: it waits in the bucket's spool object
    assert _patch(a, location, 0, data[:first]).status_code == 204
    head = httpx.head(f"{b.url}{location}", headers={**CREW, **TUS})
    assert head.status_code == 200 and int(head.headers["upload-offset"]) == first
    offset, response = first, None
    while offset < len(data):
        chunk = data[offset : offset + 3 * MIB]
        response = _patch(b, location, offset, chunk)
        assert response.status_code == 204, response.text
        offset += len(chunk)
    assert response is not None
    return httpx.URL(response.headers["content-location"]).path


@pytest.mark.timeout(900)  # two servers, migrate, a month of demo data, the walk-through; 2 cores
def test_two_servers_share_one_database_and_one_bucket(
    two_servers: tuple[Server, Server], tmp_path: Path
) -> None:
    a, b = two_servers
    for server in (a, b):  # both see the database and the bucket
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text

    order_id = _sign_contract_on(a, tmp_path)
    pdfs = [
        httpx.get(f"{s.url}/work-orders/{order_id}/contract/pdf", headers=CREW, timeout=60)
        for s in (a, b)
    ]
    assert [p.status_code for p in pdfs] == [200, 200]
    signed_on_a = (tmp_path / "walk").glob("*/contract.pdf")
    sha_a = hashlib.sha256(next(signed_on_a).read_bytes()).hexdigest()
    assert {hashlib.sha256(p.content).hexdigest() for p in pdfs} == {sha_a}
    verdict = httpx.post(
        f"{b.url}/contracts/verify",
        files={"file": ("c.pdf", pdfs[1].content, "application/pdf")},
        timeout=60,
    ).json()
    assert verdict["valid"] is True, verdict

    data = mp4_bytes(mdat_bytes=7 * MIB + 4321)
    media_url = _upload_across(a, b, order_id, data)
    for server in (a, b):
        item = httpx.get(f"{server.url}{media_url}", headers=CREW, timeout=30)
        assert item.status_code == 200, item.text
        assert item.json()["sha256"] == hashlib.sha256(data).hexdigest()
        content = httpx.get(f"{server.url}{media_url}/content", headers=CREW, timeout=60)
        assert content.status_code == 200 and content.content == data
    for name in ("a", "b"):  # nothing of the upload stayed on either host's disk
        assert not list((tmp_path / f"media-{name}").glob("uploads/*"))
