"""Benchmark of the media slice: upload throughput, analysis cost, memory, phash lookup.

    .venv/bin/python benches/bench_media.py [--photos 50] [--video-mb 500] [--max-hashes 1000000]

1. 50 photos of ~4 MB POSTed over loopback to the real endpoint (real uvicorn on 127.0.0.1,
   SQLite file database) against the same bytes POSTed to a bare streaming ASGI sink that
   writes the body to disk (and fsyncs it, as the store does), in the same run.
2. The image analysis (sniff, header checks, full decode + hash + thumbnail, barcode) timed
   on its own: the upload response only waits for the header checks.
3. The server's peak resident memory (VmHWM) before and after one 500 MB video is uploaded
   with tus, and with a single multipart request.
4. How the near-duplicate lookup grows with the number of stored hashes (band index vs a
   full scan), up to 1,000,000.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BOUNDARY = "benchboundary7f3a9c"
MB = 1024 * 1024


# -- servers ----------------------------------------------------------------------------------


def _settings(workdir: Path) -> Any:
    from field_api.config import Settings

    return Settings(
        env="development",
        database_url=f"sqlite:///{workdir}/bench.db",
        media_dir=workdir / "media",
        signing_key_path=workdir / "keys" / "signing.key",
        worker_in_process=False,  # analysis: in the request's background task or the worker
    )


def serve_app(workdir: Path, port: int) -> None:
    import uvicorn

    from field_api.main import create_app

    uvicorn.run(create_app(_settings(workdir)), host="127.0.0.1", port=port, log_level="warning")


async def _sink(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app: stream the request body to a file, fsync, answer 201."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":
        await receive()
    else:
        target = Path(os.environ["SINK_DIR"]) / f"{uuid.uuid4().hex}.bin"
        with target.open("wb") as fh:
            more = True
            while more:
                message = await receive()
                fh.write(message.get("body", b""))
                more = message.get("more_body", False)
            fh.flush()
            os.fsync(fh.fileno())
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def run_worker(workdir: Path) -> None:
    """A niced job worker on the media queue (what `fieldops worker --queues media` runs), with
    the bench's settings; stopped by SIGTERM."""
    from field_api import workers
    from field_api.audit import keys as audit_keys
    from field_api.db import make_engine, make_session_factory
    from field_api.wiring import import_all_models, install_hooks, job_handlers, periodic_jobs

    os.nice(10)
    import_all_models()
    install_hooks()
    settings = _settings(workdir)
    audit_keys.install(settings)
    factory = make_session_factory(make_engine(settings.database_url))
    config = workers.config_of(
        settings, periodic_jobs(settings), queues=["media"], concurrency=1, tag="bench-worker"
    )
    worker = workers.make_worker(factory, settings, config, job_handlers())
    worker.start()
    worker.stop_event.wait()


def serve_sink(workdir: Path, port: int) -> None:
    import uvicorn

    os.environ["SINK_DIR"] = str(workdir)
    uvicorn.run(_sink, host="127.0.0.1", port=port, log_level="warning")


class Server:
    """A server in its own process, so its memory can be read from /proc."""

    def __init__(self, role: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, role, str(workdir), str(self.port)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code < 300:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{role} did not start")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- data -------------------------------------------------------------------------------------


def setup_database(workdir: Path) -> tuple[str, int]:
    """Schema, a crew with a user and an order; returns (token, order_id)."""
    from datetime import date

    from field_api.auth import service as auth_service
    from field_api.common.actors import Role
    from field_api.db import Base, make_engine, make_session_factory
    from field_api.wiring import import_all_models
    from field_api.work_orders import service as orders
    from field_api.work_orders.schemas import WorkOrderCreate

    settings = _settings(workdir)
    import_all_models()
    engine = make_engine(settings.database_url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        district = auth_service.create_district(
            session, code="BENCH", name="bench", lv_ceiling_kw=160, actor=None
        )
        crew = auth_service.create_crew(
            session, code="C1", name="crew", district_code=district.code,
            handles_repairs=False, actor=None,
        )  # fmt: skip
        _, token = auth_service.create_user(
            session, name="bench-crew", role=Role.crew, crew_code=crew.code,
            settings=settings, actor=None,
        )  # fmt: skip
        order = orders.create(
            session,
            WorkOrderCreate(
                customer_name="张三", customer_phone="13800138000",
                customer_id_number="440301199001011234", category="residential",
                capacity_kw=8, phases=1, address="bench", lon=113.93, lat=22.53,
                district_code=district.code, crew_code=crew.code, applied_on=date.today(),
            ),  # type: ignore[arg-type]
            actor=None,
        )  # fmt: skip
        order_id = order.id
    engine.dispose()
    return token, order_id


def make_photo(target_bytes: int = 4 * MB) -> bytes:
    """A 12 MP JPEG of about ``target_bytes`` (blocky scene plus sensor-like noise)."""
    rng = np.random.default_rng(1)
    scene = np.kron(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8), np.ones((8, 8, 1)))
    for amplitude in (30, 40, 50, 60, 70):
        noise = rng.integers(0, amplitude, scene.shape)
        arr = (scene // 2 + noise).clip(0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(arr).save(out, "JPEG", quality=85)
        if out.tell() >= target_bytes * 0.95:
            return out.getvalue()
    return out.getvalue()


def variant(jpeg: bytes, i: int) -> bytes:
    """Other bytes, same pixels: a COM segment after SOI (distinct sha256 per photo)."""
    text = f"bench photo {i}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def multipart(fields: dict[str, str], data: bytes, name: str = "p.jpg") -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return b"".join(parts) + head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


# -- 1. upload throughput -----------------------------------------------------------------------


def _post_all(url: str, bodies: list[bytes], token: str) -> float:
    headers = {
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
        "authorization": f"Bearer {token}",
    }
    with httpx.Client(timeout=120) as client:
        start = time.perf_counter()
        for body in bodies:
            r = client.post(url, content=body, headers=headers)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
        return time.perf_counter() - start


def bench_uploads(workdir: Path, token: str, order_id: int, photos: int) -> None:
    print(f"\n== 1. upload of {photos} photos over loopback ==")
    photo = make_photo()
    print(f"photo: {len(photo) / MB:.2f} MiB, 4000x3000 JPEG")
    bodies = [
        multipart({"client_id": str(uuid.uuid4()), "kind": "site"}, variant(photo, i))
        for i in range(photos)
    ]
    total_mb = sum(len(b) for b in bodies) / MB
    sink_dir = workdir / "sink"
    sink_dir.mkdir()
    sink = Server("serve-sink", sink_dir)
    auth = {"authorization": f"Bearer {token}"}
    rows: list[tuple[str, float, float | None]] = []
    try:
        _post_all(sink.url + "/upload", bodies[:2], token)  # warm up
        rows.append(("bare ASGI sink (write+fsync)", _post_all(sink.url + "/upload", bodies, token),
                     None))  # fmt: skip
        off = {"FIELDOPS_MEDIA_ANALYSE_IN_PROCESS": "0"}
        modes = (
            ("endpoint; worker drains queue after", off, "after"),
            ("endpoint; niced worker alongside", off, "alongside"),
            ("endpoint; analysis in-process", {"FIELDOPS_MEDIA_ANALYSE_IN_PROCESS": "1"}, None),
        )
        for n, (label, env, worker_mode) in enumerate(modes):
            app = Server("serve-app", workdir, env)
            worker = None

            def start_worker() -> subprocess.Popen[bytes]:
                return subprocess.Popen([sys.executable, __file__, "worker", str(workdir)])

            if worker_mode == "alongside":
                worker = start_worker()
            try:
                fresh = [
                    multipart(
                        {"client_id": str(uuid.uuid4()), "kind": "site"},
                        variant(photo, 1000 * (n + 1) + i),
                    )
                    for i in range(photos)
                ]
                url = f"{app.url}/work-orders/{order_id}/media"
                seconds = _post_all(url, fresh, token)
                if worker_mode == "after":
                    worker = start_worker()
                start = time.perf_counter()
                with httpx.Client(timeout=120) as client:
                    while any(
                        i["analysis"] == "pending" for i in client.get(url, headers=auth).json()
                    ):
                        time.sleep(0.2)  # wait for the deferred analysis to drain
                rows.append((label, seconds, time.perf_counter() - start))
            finally:
                app.stop()
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=30)
    finally:
        sink.stop()
    sink_s = rows[0][1]
    print(f"{'path':<40}{'seconds':>8}{'MiB/s':>8}{'photos/s':>9}{'vs sink':>8}{'drain s':>8}")
    for label, seconds, drain in rows:
        print(f"{label:<40}{seconds:>8.2f}{total_mb / seconds:>8.1f}{photos / seconds:>9.1f}"
              f"{sink_s / seconds:>8.0%}{'' if drain is None else f'{drain:.1f}':>8}")  # fmt: skip
    print("(drain s: time after the last response until every photo was analysed)")


# -- 2. analysis cost -------------------------------------------------------------------------


def bench_analysis(workdir: Path) -> None:
    from field_api.common.hashing import sha256_file
    from field_api.media.analysis import (
        analyze_image,
        inspect_image,
        load_oriented_image,
        sniff_file,
    )
    from field_api.media.barcode import decode_barcodes

    print("\n== 2. image analysis, timed on its own (median of 7) ==")
    path = workdir / "photo.jpg"
    path.write_bytes(make_photo())
    barcode_path = workdir / "barcode.jpg"
    _barcode_photo().save(barcode_path, "JPEG", quality=85)

    def timed(fn: Any) -> float:
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1000

    rows = [
        ("sha256 of the 4 MiB file", timed(lambda: sha256_file(path)), "upload"),
        ("sniff magic bytes", timed(lambda: sniff_file(path)), "upload"),
        ("header checks + EXIF (no decode)", timed(lambda: inspect_image(path, sniff_file(path))),
         "upload"),
        ("full decode + phash + thumbnail", timed(lambda: analyze_image(path, sniff_file(path))),
         "deferred"),
        ("barcode: decode 30° Code 128 photo", timed(lambda: decode_barcodes(
            load_oriented_image(barcode_path, sniff_file(barcode_path)))), "deferred"),
    ]  # fmt: skip
    print(f"{'step':<38}{'ms':>8}  when")
    for name, ms, when in rows:
        print(f"{name:<38}{ms:>8.1f}  {when}")


def _barcode_photo() -> Image.Image:
    import barcode
    from barcode.writer import ImageWriter
    from PIL import ImageFilter

    buf = io.BytesIO()
    barcode.get("code128", "3240101234567890123456", writer=ImageWriter()).write(
        buf, options={"write_text": False, "module_width": 0.4, "module_height": 12}
    )
    symbol = Image.open(buf).convert("RGB").rotate(30, expand=True, fillcolor=(255, 255, 255))
    canvas = Image.new("RGB", (4000, 3000), (150, 140, 130))
    canvas.paste(symbol.resize((symbol.width * 2, symbol.height * 2)), (1200, 900))
    return canvas.filter(ImageFilter.GaussianBlur(1.5))


# -- 3. memory during a 500 MB video ------------------------------------------------------------


def _video_stream(total: int, chunk: int = MB) -> Iterator[bytes]:
    """A well-formed MP4 of ``total`` bytes generated on the fly (ftyp, moov, huge mdat)."""
    ftyp = (24).to_bytes(4, "big") + b"ftypisom" + b"\x00\x00\x02\x00isommp41"
    mvhd_payload = b"\x00" * 4 + (0).to_bytes(4, "big") * 2 + (1000).to_bytes(4, "big")
    mvhd_payload += (60_000).to_bytes(4, "big") + b"\x00" * 80
    mvhd = (8 + len(mvhd_payload)).to_bytes(4, "big") + b"mvhd" + mvhd_payload
    moov = (8 + len(mvhd)).to_bytes(4, "big") + b"moov" + mvhd
    head = ftyp + moov
    mdat_size = total - len(head)
    yield head + mdat_size.to_bytes(4, "big") + b"mdat"
    left = mdat_size - 8
    block = random.Random(5).randbytes(chunk)
    while left > 0:
        n = min(chunk, left)
        yield block[:n]
        left -= n


def bench_video_memory(workdir: Path, token: str, order_id: int, video_mb: int) -> None:
    import base64

    print(f"\n== 3. server memory while one {video_mb} MiB video is uploaded ==")
    total = video_mb * MB
    app = Server("serve-app", workdir)
    auth = {"authorization": f"Bearer {token}"}
    try:
        with httpx.Client(timeout=600) as client:
            client.get(f"{app.url}/work-orders/{order_id}/media", headers=auth)
            before = app.peak_rss_mb()
            meta = ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}"
                for k, v in {"client_id": str(uuid.uuid4()), "kind": "wiring"}.items()
            )
            start = time.perf_counter()
            created = client.post(
                f"{app.url}/work-orders/{order_id}/media/uploads",
                headers={**auth, "Tus-Resumable": "1.0.0", "Upload-Length": str(total),
                         "Upload-Metadata": meta},
            )  # fmt: skip
            created.raise_for_status()
            patched = client.patch(
                app.url + created.headers["location"],
                content=_video_stream(total),
                headers={**auth, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                         "Content-Type": "application/offset+octet-stream"},
            )  # fmt: skip
            if patched.status_code != 204:
                raise RuntimeError(f"tus PATCH: {patched.status_code} {patched.text[:200]}")
            tus_s = time.perf_counter() - start
            after_tus = app.peak_rss_mb()

            def body() -> Iterator[bytes]:
                yield (
                    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="client_id"\r\n\r\n'
                    f"{uuid.uuid4()}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; "
                    f'name="kind"\r\n\r\nwiring\r\n--{BOUNDARY}\r\nContent-Disposition: '
                    f'form-data; name="file"; filename="v.mp4"\r\n\r\n'
                ).encode()
                yield from _video_stream(total)
                yield f"\r\n--{BOUNDARY}--\r\n".encode()

            start = time.perf_counter()
            single = client.post(
                f"{app.url}/work-orders/{order_id}/media",
                content=body(),
                headers={**auth, "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
            if single.status_code not in (200, 201):
                raise RuntimeError(f"multipart: {single.status_code} {single.text[:200]}")
            multipart_s = time.perf_counter() - start
            after_multipart = app.peak_rss_mb()
        print(f"server peak RSS before the video:            {before:7.0f} MiB")
        print(f"server peak RSS after it came by tus:       {after_tus:7.0f} MiB"
              f"   ({total / MB / tus_s:.0f} MiB/s incl. sha256 verify)")  # fmt: skip
        print(f"server peak RSS after it came as multipart: {after_multipart:7.0f} MiB"
              f"   ({total / MB / multipart_s:.0f} MiB/s)")  # fmt: skip
    finally:
        app.stop()


# -- 4. phash lookup growth ------------------------------------------------------------------


def bench_phash_lookup(workdir: Path, max_hashes: int) -> None:
    from sqlalchemy.orm import Session

    from field_api.db import Base, make_engine
    from field_api.media import rules, service
    from field_api.wiring import import_all_models

    print(f"\n== 4. near-duplicate lookup as stored hashes grow to {max_hashes:,} ==")
    db = workdir / "hashes.db"
    import_all_models()
    engine = make_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("PRAGMA synchronous=OFF")
    rng = random.Random(11)
    queries = [rng.getrandbits(64) for _ in range(30)]
    planted = {q: q ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for q in queries}
    sizes = [s for s in (1_000, 10_000, 100_000, 1_000_000) if s <= max_hashes]
    stored = 0
    print(f"{'stored':>10}{'band index ms':>15}{'candidates':>12}{'full scan ms':>14}"
          f"{'found planted':>15}")  # fmt: skip
    for size in sizes:
        insert_start = time.perf_counter()
        while stored < size:
            batch = min(50_000, size - stored)
            items, bands = [], []
            for n in range(stored, stored + batch):
                value = planted[queries[n]] if n < len(queries) else rng.getrandbits(64)
                signed = rules.to_signed64(value)
                order_id = 1 + n % 5000 + 1  # never order 1: the queries' own order
                items.append((n + 1, f"{n:036d}", order_id, "accepted", "site", "jpeg",
                              "0" * 64, 1, "2026-01-01 00:00:00", signed, "done"))  # fmt: skip
                bands.extend(
                    (n + 1, b, v, order_id) for b, v in enumerate(rules.phash_bands(value))
                )
            raw.executemany(
                "INSERT INTO media_items (id, client_id, order_id, stage, kind, media_type, "
                "sha256, size_bytes, uploaded_at, phash, analysis) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                items,
            )
            raw.executemany(
                "INSERT INTO media_hash_bands (media_id, band, value, order_id) VALUES (?,?,?,?)",
                bands,
            )
            raw.commit()
            stored += batch
        raw.execute("ANALYZE")
        raw.commit()
        insert_s = time.perf_counter() - insert_start
        with Session(engine) as session:
            times, counts, found = [], [], 0
            for q in queries:
                start = time.perf_counter()
                candidates = service.near_duplicates(
                    session, rules.to_signed64(q), exclude_order_id=1
                )
                match = rules.find_reuse(rules.to_signed64(q), "1", candidates, max_hamming=6)
                times.append(time.perf_counter() - start)
                counts.append(len(candidates))
                found += match is not None
            scan_times = []
            for q in queries[:3]:
                start = time.perf_counter()
                rows = raw.execute("SELECT id, phash FROM media_items").fetchall()
                _ = min(rules.hamming_distance(q, h) for _, h in rows)
                scan_times.append(time.perf_counter() - start)
        print(f"{size:>10,}{statistics.median(times) * 1000:>15.2f}"
              f"{statistics.median(counts):>12.0f}{statistics.median(scan_times) * 1000:>14.1f}"
              f"{found:>9}/{len(queries)}   (insert {insert_s:.1f} s)")  # fmt: skip
    raw.close()
    engine.dispose()


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--video-mb", type=int, default=500)
    parser.add_argument("--max-hashes", type=int, default=1_000_000)
    parser.add_argument(
        "--only", choices=["uploads", "analysis", "video", "phash"], action="append"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    only = set(args.only or ["uploads", "analysis", "video", "phash"])
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        workdir = Path(tmp)
        token, order_id = setup_database(workdir)
        print(f"workdir {workdir}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
        if "uploads" in only:
            bench_uploads(workdir, token, order_id, args.photos)
        if "analysis" in only:
            bench_analysis(workdir)
        if "video" in only:
            bench_video_memory(workdir, token, order_id, args.video_mb)
        if "phash" in only:
            bench_phash_lookup(workdir, args.max_hashes)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        run_worker(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] in ("serve-app", "serve-sink"):
        (serve_app if sys.argv[1] == "serve-app" else serve_sink)(
            Path(sys.argv[2]), int(sys.argv[3])
        )
    else:
        main()
