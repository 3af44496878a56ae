"""Load benchmark that sizes a province: simulated crews doing the one-visit flow (order 16).

    .venv/bin/python benches/bench_load.py [--crews 50] [--seconds 120] [--think-s 3]
        [--upload-mbps 2] [--planners 3] [--workers 1,2] [--write-capacity]

For each API configuration (``--workers``: 1 and 2 uvicorn workers), on 127.0.0.1 only:

- a throw-away PostgreSQL database next to ``--pg-url`` / FIELDOPS_TEST_DATABASE_URL (dropped
  afterwards) with the schema, the demo data (``fieldops demo load --months 1``) and, made by
  the services, one crew per simulated crew with its member's token, and a service clerk,
  storekeeper, planner and admin token; one SeaweedFS server (``weed``, tests/s3server.py)
  for the whole run, a key prefix per configuration;
- the API in ``FIELDOPS_ENV=production`` (pepper, keys, https public URL, S3 store, the http
  SMS gateway) served by ``fieldops serve --workers N``; it runs no job worker thread
  (FIELDOPS_WORKER_IN_PROCESS=false) and leaves photo analysis to the jobs;
- one ``fieldops worker`` process (every queue: photo analysis, customer SMS, ...); the SMS go
  to field_api/sms's fake gateway on loopback (the customer's phone: the crew reads the
  one-time code there, ``GET /messages``);
- the load generator in its own process (benches/load_client.py): ``--crews`` crews, each
  running the one-visit flow on fresh orders of its own (arrival with position, six ~2 MB
  photos and a barcode photo, scheme, contract with the one-time code and signature, the kit
  issued by a storekeeper, both checklist phases, completion), ``--think-s`` (jittered x0.5-1.5)
  between steps, uploads paced to ``--upload-mbps`` MB/s, plus ``--planners`` planners reading
  reports, for ``--seconds``; then the job queue is drained and every record the clients saw
  answered 2xx is looked up in the database (exactly one row each, no extra rows).

Then the scaling phase, on a database of its own: ``--scaling-rounds`` (3) rounds, each a
closed-loop saturation (16 connections, no think time, no uploads, a read/write mix of the
product) of a fresh ``fieldops serve`` under 1 and then 2 workers (with its job worker; the
database vacuumed first as pgbench does, a ``--warmup-s`` warm-up, then ``--saturate-s``
measured), then the machine's ceiling: a bare FastAPI endpoint under 1 and 2 workers hammered
the same way. Alternating rounds let whatever else the shared machine does hit every
configuration alike; the median round of each is reported, every round printed. The figures,
the issue's targets beside them (never asserted), and with ``--write-capacity``
docs/capacity.md written from the figures. The load generator shares the machine's cores with
the servers: its CPU time is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import httpx

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

PG_ENV = "FIELDOPS_TEST_DATABASE_URL"
PEPPER = "bench-load-pepper-" + "0123456789abcdef"
SITE0 = (22.50, 113.90)  # crews' sites: a grid from here, 600 m x 1.2 km apart (Nanshan)
TARGET_P99_S = 1.0
TARGET_SCALING = 0.80
ORDER_TEMPLATE: dict[str, Any] = {
    "customer_name": "压测用户", "category": "residential", "capacity_kw": 8, "phases": 1,
    "address": "深圳市南山区压测路1号", "district_code": "SZ-NS",
    "lat": 22.5480, "lon": 113.9420,
}  # fmt: skip


# -- the servers run here ---------------------------------------------------------------------


def make_bare_app() -> Any:
    """The ceiling: a bare FastAPI endpoint returning a small JSON, served with the product's
    connection policy (a keep-alive connection closed after FIELDOPS_KEEPALIVE_REQUESTS
    requests, field_api.keepalive), so that the two are spread over the workers alike."""
    from fastapi import FastAPI

    from field_api.config import Settings
    from field_api.keepalive import KeepAliveLimit

    app = FastAPI()
    app.add_middleware(KeepAliveLimit, max_requests=Settings().keepalive_requests)

    @app.get("/ping")
    def ping() -> dict[str, Any]:
        return {"status": "ok", "items": [1, 2, 3]}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(target: str, port: int, workers: int) -> None:
    """uvicorn as ``fieldops serve --workers N`` runs it (factory; N > 1: N processes, each
    with its own SO_REUSEPORT socket, field_api.serving)."""
    from field_api import serving
    from field_api.cli import _serve_log_config

    options: dict[str, Any] = {
        "factory": True, "host": "127.0.0.1", "port": port, "workers": workers,
        "log_level": "warning", "log_config": _serve_log_config("warning", workers),
        "timeout_graceful_shutdown": 30,
    }  # fmt: skip
    serving.serve(f"bench_load:{target}", **options)


# -- setup (a subprocess in development: the demo loader refuses production) ---------------------


def setup(url: str, out: Path, crews: int, months: int) -> None:
    """Schema (as ``fieldops db upgrade`` builds it: head == models), the demo data through the
    real command, then the bench's crews and users through the services; tokens to ``out``."""
    from field_api.auth import service as auth_service
    from field_api.cli.context import service_context
    from field_api.common.actors import Role
    from field_api.db import Base, make_engine
    from field_api.sms import crypto as sms_crypto
    from field_api.wiring import import_all_models

    import_all_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    done = subprocess.run([sys.executable, "-m", "fieldops.cli", "demo", "load", "--months",
                           str(months)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"demo load failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    tokens: dict[str, str] = {}
    with service_context() as (settings, factory), factory.begin() as session:
        sms_crypto.cipher_for(settings)  # the SMS key file (production does not create it)
        for role in ("service", "storekeeper", "planner", "admin"):
            _, tokens[role] = auth_service.create_user(
                session, name=f"压测{role}", role=Role(role), crew_code=None,
                settings=settings, actor=None,
            )  # fmt: skip
        for n in range(crews):
            code = f"BENCH-C{n:03d}"
            auth_service.create_crew(session, code=code, name=f"压测{n}班",
                                     district_code="SZ-NS", actor=None)
            _, tokens[f"crew{n}"] = auth_service.create_user(
                session, name=f"压测工{n}", role=Role.crew, crew_code=code,
                settings=settings, actor=None,
            )  # fmt: skip
    engine.dispose()
    out.write_text(json.dumps(tokens), encoding="utf-8")


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A server or worker subprocess whose peak memory and CPU time are read from /proc."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def pids(self) -> list[int]:
        import psutil

        try:
            me = psutil.Process(self.popen.pid)
            return [me.pid] + [c.pid for c in me.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def peak_rss_mib(self) -> dict[int, float]:
        """VmHWM of the process and each of its children (uvicorn's workers)."""
        peaks = {}
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1]) / 1024
            except OSError:
                pass
        return peaks

    def cpu_s(self) -> float:
        import psutil

        total = 0.0
        for pid in self.pids():
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def await_healthy(self, deadline_s: float = 120) -> None:
        deadline = time.monotonic() + deadline_s
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer /healthz in time")
            time.sleep(0.2)  # polling a starting server, not a measurement

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=30)


def start(name: str, args: list[str], env: dict[str, str], workdir: Path,
          port: int | None = None) -> Proc:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(args, env=env, cwd=workdir, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proc = Proc(name, popen, log, f"http://127.0.0.1:{port}" if port else "")
    if port:
        proc.await_healthy()
    return proc


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDOPS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    return env


def product_env(url: str, workdir: Path, s3: Any, prefix: str, gateway: dict[str, str],
                production: bool) -> dict[str, str]:
    """What the API, the worker and the setup share: database, bucket, keys, pepper."""
    storage = s3.settings(prefix=prefix)
    keys = workdir / "keys"
    return base_env() | {
        "FIELDOPS_ENV": "production" if production else "development",
        "FIELDOPS_DATABASE_URL": url,
        "FIELDOPS_TOKEN_PEPPER": PEPPER,
        "FIELDOPS_PUBLIC_BASE_URL": "https://connect.example.com",
        "FIELDOPS_SIGNING_KEY_PATH": str(keys / "contract-signing.key"),
        "FIELDOPS_AUDIT_KEY_PATH": str(keys / "audit-chain.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH": str(keys / "audit-checkpoint.key"),
        "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(workdir / "audit-checkpoints"),
        "FIELDOPS_INSPECTIONS_DIR": str(workdir / "inspections"),
        "FIELDOPS_MEDIA_DIR": str(workdir / "media"),
        "FIELDOPS_STORAGE_BACKEND": "s3",
        "FIELDOPS_S3_ENDPOINT_URL": storage["endpoint_url"],
        "FIELDOPS_S3_BUCKET": storage["bucket"],
        "FIELDOPS_S3_REGION": storage["region"],
        "FIELDOPS_S3_ACCESS_KEY_ID": storage["access_key_id"],
        "FIELDOPS_S3_SECRET_ACCESS_KEY": storage["secret_access_key"],
        "FIELDOPS_S3_PATH_STYLE": "true",
        "FIELDOPS_S3_PREFIX": storage["prefix"],
        "FIELDOPS_WORKER_IN_PROCESS": "false",
        "FIELDOPS_MEDIA_ANALYSE_IN_PROCESS": "false",
        "FIELDOPS_LOG_LEVEL": "WARNING",
        "FIELDOPS_SMS_KEY_PATH": str(keys / "sms.key"),
    } | gateway  # fmt: skip


def run_loadgen(mode: str, spec: dict[str, Any], workdir: Path) -> tuple[dict[str, Any], float]:
    """benches/load_client.py in its own process; (its result, its CPU seconds)."""
    spec_path, out_path = workdir / f"{mode}-spec.json", workdir / f"{mode}-out.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    log = workdir / f"loadgen-{mode}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, str(HERE / "load_client.py"), mode, str(spec_path), str(out_path)],
            env=base_env(), cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    if popen.returncode != 0:
        raise RuntimeError(f"load generator ({mode}) failed:\n{log.read_text()[-4000:]}")
    stderr = log.read_text(errors="replace").strip()
    if stderr:
        print(f"  load generator said ({log}):\n    " + "\n    ".join(stderr.splitlines()[:15]))
    return json.loads(out_path.read_text()), usage.ru_utime + usage.ru_stime


# -- the database: throw-away, snapshots, drain, the lost/duplicate check ------------------------


def create_database(base_url: str, tag: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(base_url)
    name = f"{base.database}_load_{tag}_{secrets.token_hex(3)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return base.set(database=name).render_as_string(hide_password=False), admin


def drop_database(url: str, admin: Any) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def db_snapshot(engine: Any) -> dict[str, Any]:
    """Rows of every table and the database's size (pg_database_size)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        rows = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        relsize = {t: conn.execute(text(f"SELECT pg_total_relation_size('\"{t}\"')")).scalar_one()
                   for t in tables}
    return {"rows": rows, "db_bytes": int(size), "table_bytes": relsize}


def queue_state(engine: Any) -> dict[str, int]:
    """One-off jobs by state (periodic ones wait by design) and photos still pending analysis."""
    from sqlalchemy import text

    with engine.connect() as conn:
        state = dict(conn.execute(text(
            "SELECT state, count(*) FROM jobs WHERE period_s IS NULL GROUP BY state")).all())
        state["media_pending"] = conn.execute(text(
            "SELECT count(*) FROM media_items WHERE analysis = 'pending'")).scalar_one()
        state["periodic_dead"] = conn.execute(text(
            "SELECT count(*) FROM jobs WHERE period_s IS NOT NULL AND state = 'dead'"
        )).scalar_one()
    return {str(k): int(v) for k, v in state.items()}


def drain(engine: Any, deadline_s: float) -> tuple[dict[str, int], float]:
    """Wait (bounded) until no one-off job is pending or running and no photo is pending."""
    t0 = time.monotonic()
    while True:
        state = queue_state(engine)
        busy = state.get("pending", 0) + state.get("running", 0) + state["media_pending"]
        if busy == 0 or time.monotonic() - t0 > deadline_s:
            return state, time.monotonic() - t0
        time.sleep(0.5)  # polling the queue, bounded by deadline_s


def check_records(engine: Any, seen: dict[str, Any], sat: dict[str, Any]) -> dict[str, int]:
    """Every 2xx the clients saw has exactly one row; no extra rows beside them."""
    from sqlalchemy import text

    lost = dup = 0
    orders = sorted({o for o, _, _ in seen["media"]} | set(seen["completed"])
                    | {o for o, _ in seen["visits"]})
    with engine.connect() as conn:
        def per_order(sql: str) -> dict[Any, int]:
            if not orders:
                return {}
            found = conn.execute(text(sql), {"ids": orders}).all()
            return {tuple(r[:-1]) if len(r) > 2 else r[0]: int(r[-1]) for r in found}

        def compare(expected: Counter[Any], actual: dict[Any, int]) -> None:
            nonlocal lost, dup
            for key in set(expected) | set(actual):
                got, want = actual.get(key, 0), expected.get(key, 0)
                lost += max(0, want - got)
                dup += max(0, got - want)

        compare(Counter(o for o, _, _ in seen["media"]), per_order(
            "SELECT order_id, count(*) FROM media_items WHERE order_id = ANY(:ids) "
            "AND kind <> 'signature' GROUP BY order_id"))  # the signature image is generated
        ids = [i for _, _, i in seen["media"]]
        found = conn.execute(text("SELECT count(*) FROM media_items WHERE id = ANY(:ids)"),
                             {"ids": ids}).scalar_one() if ids else 0
        lost += len(set(ids)) - int(found)  # each answered item is that very row
        compare(Counter(seen["contracts"]), per_order(
            "SELECT order_id, count(*) FROM contracts WHERE order_id = ANY(:ids) "
            "AND status = 'signed' GROUP BY order_id"))
        compare(Counter((o, p) for o, p, _ in seen["checklists"]), per_order(
            "SELECT order_id, phase, count(*) FROM checklist_submissions "
            "WHERE order_id = ANY(:ids) GROUP BY order_id, phase"))
        compare(Counter(o for o, _ in seen["visits"]), per_order(
            "SELECT order_id, count(*) FROM visits WHERE order_id = ANY(:ids) GROUP BY order_id"))
        compare(Counter(o for o, _ in seen["kits"]), per_order(
            "SELECT order_id, count(*) FROM kit_reservations WHERE order_id = ANY(:ids) "
            "GROUP BY order_id"))
        compare(Counter(seen["completed"]), per_order(
            "SELECT id, count(*) FROM work_orders WHERE id = ANY(:ids) AND stage = 'energised' "
            "GROUP BY id"))
        made = conn.execute(text("SELECT customer_id_number, count(*) FROM work_orders WHERE "
                                 "customer_id_number LIKE 'SAT%' GROUP BY 1")).all()
        compare(Counter(n for _, n in sat["created_orders"]), {n: int(c) for n, c in made})
    return {"lost": lost, "duplicated": dup}


# -- preparing a configuration through the API ---------------------------------------------------


def site_of(n: int) -> tuple[float, float]:
    return round(SITE0[0] + (n % 10) * 0.006, 6), round(SITE0[1] + (n // 10) * 0.012, 6)


def prepare_world(base: str, tokens: dict[str, str], crews: int, orders_per_crew: int,
                  cfg: int) -> list[dict[str, Any]]:
    """A transformer near each crew's site (admin), a stocked depot (storekeeper) and fresh
    orders assigned to each crew (service desk), all through the API."""
    def h(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[who]}"}

    with httpx.Client(base_url=base, timeout=120) as client:
        csv = "code,name,rated_kva,load_kva,lon,lat\n" + "".join(
            f"BENCH-T{n:03d},压测{n}号配变,630,100,{lon + 0.0008},{lat + 0.0003}\n"
            for n, (lat, lon) in ((n, site_of(n)) for n in range(crews)))
        r = client.post("/network/imports", headers=h("admin"),
                        files={"file": ("bench.csv", csv.encode(), "text/csv")})
        r.raise_for_status()
        r = client.post("/depots", headers=h("storekeeper"),
                        json={"code": "BENCH-DEPOT", "name": "压测物料点",
                              "district_code": "SZ-NS"})
        r.raise_for_status()
        materials = client.get("/materials", headers=h("storekeeper")).json()
        r = client.post("/depots/BENCH-DEPOT/receipts", headers=h("storekeeper"),
                        json={"lines": {m["code"]: 100_000 for m in materials}})
        r.raise_for_status()
        out = []
        today = datetime.now(UTC).date().isoformat()
        for n in range(crews):
            lat, lon = site_of(n)
            crew: dict[str, Any] = {"who": f"crew{n}", "lat": lat, "lon": lon, "orders": []}
            for k in range(orders_per_crew):
                phone = f"13{cfg}{n:04d}{k:04d}"
                body = ORDER_TEMPLATE | {
                    "customer_phone": phone, "customer_id_number": f"BENCH{cfg}{n:04d}{k:04d}",
                    "lat": lat, "lon": lon, "crew_code": f"BENCH-C{n:03d}", "applied_on": today,
                }  # fmt: skip
                r = client.post("/work-orders", headers=h("service"), json=body)
                r.raise_for_status()
                crew["orders"].append({"id": r.json()["id"], "phone": phone})
            out.append(crew)
    return out


def bucket_bytes(s3: Any, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under the configuration's prefix of the bucket."""
    client = s3.client()
    count = total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket,
                                                                 Prefix=prefix):
        for obj in page.get("Contents", []):
            count += 1
            total += int(obj["Size"])
    return count, total


# -- one configuration -------------------------------------------------------------------------


@dataclass
class Run:
    """What the bench keeps of one configuration (or of the bare endpoint)."""

    name: str
    workers: int
    flows: dict[str, Any] = field(default_factory=dict)
    saturation: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def start_product(workers: int, env: dict[str, str], workdir: Path,
                  concurrency: int = 4) -> tuple[Proc, Proc]:
    """``fieldops serve --workers N`` and one ``fieldops worker`` (every queue, ``concurrency``
    threads: a one-time code is not sent after everyone's photo analysis)."""
    port = free_port()
    api = start(f"api-{workers}w", [sys.executable, "-m", "fieldops.cli", "serve", "--host",
                                    "127.0.0.1", "--port", str(port), "--workers", str(workers),
                                    "--log-level", "warning"], env, workdir, port)
    worker = start(f"worker-{workers}w", [sys.executable, "-m", "fieldops.cli", "worker",
                                          "--concurrency", str(concurrency)], env, workdir)
    return api, worker


def run_config(args: argparse.Namespace, workers: int, cfg: int, s3: Any,
               gateway: Any, root: Path) -> Run:
    from sqlalchemy import create_engine

    run = Run(f"{workers} API worker{'s' if workers > 1 else ''}", workers)
    workdir = root / f"cfg{cfg}"
    workdir.mkdir()
    url, admin = create_database(args.pg_url, f"{workers}w")
    prefix = f"load-{cfg}-{secrets.token_hex(3)}/"
    env = product_env(url, workdir, s3, prefix, gateway.environment(), args.env == "production")
    engine = create_engine(url)
    try:
        run_setup_and_load(args, run, cfg, s3, prefix, env, workdir, url, engine)
    except BaseException:
        kept = Path(tempfile.mkdtemp(prefix="bench-load-logs-"))
        for log in workdir.glob("*.log"):
            log.rename(kept / log.name)
        print(f"[{run.name}] failed; the servers' and the load generator's logs: {kept}")
        raise
    finally:
        engine.dispose()
        drop_database(url, admin)
    return run


def setup_database(args: argparse.Namespace, url: str, env: dict[str, str],
                   workdir: Path) -> dict[str, str]:
    """Schema, demo data and the bench's crews and users (development: the demo loader); the
    tokens."""
    done = subprocess.run(
        [sys.executable, __file__, "setup", url, str(workdir / "tokens.json"),
         str(args.crews), str(args.demo_months)],
        env=env | {"FIELDOPS_ENV": "development"}, cwd=workdir, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"setup failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return cast(dict[str, str], json.loads((workdir / "tokens.json").read_text()))


def run_setup_and_load(args: argparse.Namespace, run: Run, cfg: int, s3: Any, prefix: str,
                       env: dict[str, str], workdir: Path, url: str, engine: Any) -> None:
    """Setup, then the product's processes and the flows."""
    print(f"[{run.name}] setup: schema, demo data, {args.crews} crews ...", flush=True)
    t0 = time.monotonic()
    tokens = setup_database(args, url, env, workdir)
    api, worker = start_product(run.workers, env, workdir, args.worker_concurrency)
    try:
        crews = prepare_world(api.url, tokens, args.crews, orders_per_crew(args), cfg)
        run.extra["setup_s"] = time.monotonic() - t0
        print(f"[{run.name}] ready after {run.extra['setup_s']:.0f} s", flush=True)
        measure_config(args, run, api, worker, engine, tokens, crews, s3, prefix, workdir)
    finally:
        run.extra["rss_api_mib"] = api.peak_rss_mib()
        run.extra["rss_worker_mib"] = worker.peak_rss_mib()
        api.stop()
        worker.stop()
    run.extra["api_log_tail"] = api.log.read_text(errors="replace")[-3000:]
    keep_logs(args, workdir, f"cfg{cfg}")


def keep_logs(args: argparse.Namespace, workdir: Path, tag: str) -> None:
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        for log in workdir.glob("*.log"):
            (args.logs / f"{tag}-{log.name}").write_bytes(log.read_bytes())


def orders_per_crew(args: argparse.Namespace) -> int:
    """Enough fresh orders for the fastest crew: a flow has 21 think pauses (at least half
    the think time each) and 7 paced uploads of ~2.2 MB."""
    fastest = 21 * 0.5 * args.think_s + 7 * 2.2 / args.upload_mbps + 2
    return max(2, math.ceil(args.seconds / fastest) + 1)


def measure_config(args: argparse.Namespace, run: Run, api: Proc, worker: Proc, engine: Any,
                   tokens: dict[str, str], crews: list[dict[str, Any]], s3: Any, prefix: str,
                   workdir: Path) -> None:
    before, objects_before = db_snapshot(engine), bucket_bytes(s3, prefix)
    cpu0 = (api.cpu_s(), worker.cpu_s())
    print(f"[{run.name}] {args.crews} crews, {args.planners} planners, flows start for "
          f"{args.seconds:g} s (then up to {args.grace_s:g} s to finish), "
          f"think {args.think_s:g} s, uploads at {args.upload_mbps:g} MB/s ...", flush=True)
    spec = {"base": api.url, "tokens": tokens, "crews": crews, "planners": args.planners,
            "think_s": args.think_s, "upload_mbps": args.upload_mbps, "seconds": args.seconds,
            "grace_s": args.grace_s,
            "sms_gateway": args.gateway_url, "depot": "BENCH-DEPOT", "seed": run.workers}
    flows, loadgen_cpu = run_loadgen("flows", spec, workdir)
    cpu1 = (api.cpu_s(), worker.cpu_s())
    state, drain_s = drain(engine, args.drain_s)
    cpu2 = (api.cpu_s(), worker.cpu_s())
    after, objects_after = db_snapshot(engine), bucket_bytes(s3, prefix)
    run.flows = flows
    run.extra.update({
        "api_cpu_s": cpu1[0] - cpu0[0], "worker_cpu_s": cpu2[1] - cpu0[1],
        "loadgen_cpu_s": loadgen_cpu, "queue_after_drain": state, "drain_s": drain_s,
        "db_before": before, "db_after": after,
        "objects": [objects_before, objects_after],
    })  # fmt: skip
    run.extra["records"] = check_records(engine, flows, {"created_orders": []})


# -- scaling: closed-loop saturation, 1 and 2 workers alternating ---------------------------------


@dataclass
class Saturation:
    """One measured closed-loop saturation of one server."""

    workers: int
    result: dict[str, Any]  # the load generator's samples and created orders
    cpu_s: dict[str, float]  # api, postgres, machine, loadgen

    @property
    def rps(self) -> float:
        return sum(ok_status(st) for _, st, _ in self.result["samples"]) / self.result["seconds"]


def saturation_spec(args: argparse.Namespace, base: str, tokens: dict[str, str],
                    crews: list[dict[str, Any]], seconds: float, tag: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return {"base": base, "tokens": tokens, "seconds": seconds,
            "connections": args.saturate_connections, "tag": tag,
            "read_orders": [[o["id"], c["who"]] for c in crews for o in c["orders"]],
            "from": str(today.replace(day=1)), "to": str(today),
            "order_template": ORDER_TEMPLATE | {"crew_code": "BENCH-C000",
                                                "applied_on": str(today)}}


def saturate_product(args: argparse.Namespace, workers: int, env: dict[str, str], workdir: Path,
                     tokens: dict[str, str], crews: list[dict[str, Any]],
                     tag: str) -> tuple[Saturation, list[Any]]:
    """A fresh API with ``workers`` workers and one job worker: a warm-up (not measured), then
    the measured saturation; (it, the orders the warm-up created). The database is vacuumed
    first, as pgbench does before each run, so that no round inherits the maintenance left by
    the rounds before it (autovacuum still runs on what a round itself writes)."""
    vacuum(env["FIELDOPS_DATABASE_URL"])
    api, worker = start_product(workers, env, workdir, args.worker_concurrency)
    try:
        warm, _ = run_loadgen("saturate", saturation_spec(
            args, api.url, tokens, crews, args.warmup_s, f"{tag}w"), workdir)
        cpu0 = (api.cpu_s(), postgres_cpu_s(), machine_busy_s())
        result, loadgen = run_loadgen("saturate", saturation_spec(
            args, api.url, tokens, crews, args.saturate_s, tag), workdir)
        cpu1 = (api.cpu_s(), postgres_cpu_s(), machine_busy_s())
    finally:
        api.stop()
        worker.stop()
    cpu = {"api": cpu1[0] - cpu0[0], "postgres": postgres_cpu_between(cpu0[1], cpu1[1]),
           "machine": cpu1[2] - cpu0[2], "loadgen": loadgen}
    return Saturation(workers, result | {"seconds": args.saturate_s}, cpu), \
        warm["created_orders"]


def vacuum(url: str) -> None:
    """``VACUUM (ANALYZE)`` of the whole database (outside a transaction, as it must run)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()


def run_scaling(args: argparse.Namespace, s3: Any, gateway: Any, root: Path) -> dict[str, Any]:
    """``--scaling-rounds`` rounds on one database, each: the product under every worker count,
    then the bare endpoint under every worker count, so that whatever else the machine does
    hits them alike; every order the saturations created is then looked up (once each)."""
    from sqlalchemy import create_engine

    workdir = root / "scaling"
    workdir.mkdir()
    url, admin = create_database(args.pg_url, "scaling")
    env = product_env(url, workdir, s3, f"load-scaling-{secrets.token_hex(3)}/",
                      gateway.environment(), args.env == "production")
    engine = create_engine(url)
    product: dict[int, list[Saturation]] = {w: [] for w in args.worker_counts}
    bare: dict[int, list[Saturation]] = {w: [] for w in args.worker_counts}
    created: list[Any] = []
    try:
        print(f"[scaling] setup: schema, demo data, {args.crews} crews ...", flush=True)
        tokens = setup_database(args, url, env, workdir)
        api, worker = start_product(1, env, workdir, args.worker_concurrency)
        try:
            crews = prepare_world(api.url, tokens, args.crews, 2, len(args.worker_counts))
        finally:
            api.stop()
            worker.stop()
        for r in range(args.scaling_rounds):
            print(f"[scaling] round {r + 1} of {args.scaling_rounds}: the product under "
                  f"{args.workers} worker(s) ({args.warmup_s:g} s warm-up, "
                  f"{args.saturate_s:g} s measured), then the bare endpoint ...", flush=True)
            for w in args.worker_counts:
                sat, warm = saturate_product(args, w, env, workdir, tokens, crews, f"{w}W{r}")
                product[w].append(sat)
                created += warm + sat.result["created_orders"]
            for w in args.worker_counts:
                bare[w].append(run_bare(args, w, workdir / f"bare{w}-{r}"))
        kinds = ("media", "completed", "visits", "contracts", "checklists", "kits")
        empty: dict[str, list[Any]] = {k: [] for k in kinds}
        records = check_records(engine, empty, {"created_orders": created})
        keep_logs(args, workdir, "scaling")
    finally:
        engine.dispose()
        drop_database(url, admin)
    return {"product": product, "bare": bare, "records": records}


def median_saturation(rounds: list[Saturation]) -> Saturation:
    """The round with the median requests per second (the lower one of an even count)."""
    ordered = sorted(rounds, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


def postgres_cpu_s() -> dict[int, float]:
    """CPU seconds of each PostgreSQL process alive now, by pid."""
    import psutil

    seen: dict[int, float] = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] == "postgres" and proc.info["cpu_times"] is not None:
            seen[proc.pid] = proc.info["cpu_times"].user + proc.info["cpu_times"].system
    return seen


def postgres_cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """PostgreSQL's CPU seconds between two snapshots: each process alive at the end, less what
    it had at the start (a backend that ended in between is not counted: the API's pooled
    connections live through a phase, so the figure is a floor)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores, from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_bare(args: argparse.Namespace, workers: int, workdir: Path) -> Saturation:
    """The bare endpoint under ``workers`` workers, hammered closed-loop for ``--ceiling-s``."""
    port = free_port()
    workdir.mkdir()
    bare = start(f"bare-{workers}w", [sys.executable, __file__, "serve", "make_bare_app",
                                      str(port), str(workers)], base_env(), workdir, port)
    try:
        spec = {"base": bare.url, "bare": True, "tokens": {}, "seconds": args.ceiling_s,
                "connections": args.saturate_connections}
        result, loadgen = run_loadgen("saturate", spec, workdir)
    finally:
        bare.stop()
    return Saturation(workers, result | {"seconds": args.ceiling_s}, {"loadgen": loadgen})


# -- figures -----------------------------------------------------------------------------------

UPLOAD = "POST /work-orders/{id}/media"
PHOTOS_PER_FLOW = 7


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def ok_status(status: str) -> bool:
    return status.isdigit() and int(status) < 400


def summarise(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """The figures of a product configuration."""
    f, x = run.flows, run.extra
    samples = f["samples"]
    families: dict[str, list[float]] = defaultdict(list)
    for fam, status, seconds in samples:
        if ok_status(status):
            families[fam].append(seconds)
    non_upload = [s for fam, st, s in samples if fam != UPLOAD and ok_status(st)]
    errors = Counter(f"{fam} {st}" for fam, st, _ in samples if not ok_status(st))
    sat = run.saturation  # the median round of the scaling phase for this worker count
    sat_ok = [s for _, st, s in sat["samples"] if ok_status(st)]
    equivalents = max(len(f["media"]) / PHOTOS_PER_FLOW, 1e-9)
    before, after = x["db_before"], x["db_after"]
    rows = sum(after["rows"].values()) - sum(before["rows"].values())
    top_tables = sorted(((after["table_bytes"][t] - before["table_bytes"].get(t, 0), t)
                         for t in after["table_bytes"]), reverse=True)[:6]
    return {
        "name": run.name, "workers": run.workers,
        "flows_completed": len(f["completed"]), "flows_started": f["flows_started"],
        "flows_aborted": f["flows_aborted"], "orders_exhausted": f["orders_exhausted"],
        "flows_per_min": len(f["completed"]) / (f["wall_s"] / 60),
        "requests": len(samples), "rps": len(samples) / f["wall_s"],
        "latency": {fam: {"n": len(v), "p50": pct(v, .5), "p95": pct(v, .95), "p99": pct(v, .99)}
                    for fam, v in sorted(families.items())},
        "non_upload_p99": pct(non_upload, .99), "upload_p99": pct(families[UPLOAD], .99),
        "errors": dict(errors), "error_count": sum(errors.values()),
        "sat_errors": dict(Counter(st for _, st, _ in sat["samples"] if not ok_status(st))),
        "saturation_rps": len(sat_ok) / float(args.saturate_s), "saturation_p99": pct(sat_ok, .99),
        "saturation_cpu_ms_per_request": {k: 1000 * v / max(len(sat_ok), 1)
                                          for k, v in x["saturation_cpu_s"].items()},
        "records": x["records"], "queue_after_drain": x["queue_after_drain"],
        "drain_s": x["drain_s"], "code_wait_p99": pct(f["code_waits"], .99),
        "rss_api_mib": x["rss_api_mib"], "rss_worker_mib": x["rss_worker_mib"],
        "cpu_s": {"api": x["api_cpu_s"], "worker": x["worker_cpu_s"],
                  "loadgen": x["loadgen_cpu_s"], "wall": f["wall_s"]},
        "per_connection": {
            "equivalents": equivalents,
            "api_cpu_s": x["api_cpu_s"] / equivalents,
            "worker_cpu_s": x["worker_cpu_s"] / equivalents,
            "db_bytes": (after["db_bytes"] - before["db_bytes"]) / equivalents,
            "db_rows": rows / equivalents,
            "object_bytes": (x["objects"][1][1] - x["objects"][0][1]) / equivalents,
            "objects": (x["objects"][1][0] - x["objects"][0][0]) / equivalents,
        },
        "top_tables": [(t, b / equivalents) for b, t in top_tables],
    }


def ms(v: float) -> str:
    return "-" if v != v else f"{v * 1000:.0f}"


def print_config(s: dict[str, Any]) -> None:
    print(f"\n== {s['name']} ==")
    print(f"flows completed {s['flows_completed']} (started {s['flows_started']}, stopped "
          f"{s['flows_aborted']} by an error or the end of the grace period) = "
          f"{s['flows_per_min']:.1f} flows/min; {s['requests']} requests = {s['rps']:.1f} req/s")
    print(f"{'endpoint family':<52}{'n':>6}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}")
    for fam, v in s["latency"].items():
        mark = "  (upload, paced)" if fam == UPLOAD else ""
        print(f"{fam:<52}{v['n']:>6}{ms(v['p50']):>8}{ms(v['p95']):>8}{ms(v['p99']):>8}{mark}")
    print(f"non-upload p99 {ms(s['non_upload_p99'])} ms; one-time code reached the gateway "
          f"(p99 of the crew's wait) {ms(s['code_wait_p99'])} ms")
    print(f"errors: {s['error_count']} {s['errors'] or ''}")
    print(f"records: lost {s['records']['lost']}, duplicated or unacknowledged (a row the "
          f"client got no 2xx for) {s['records']['duplicated']}; "
          f"queue after a {s['drain_s']:.1f} s drain: {s['queue_after_drain']}")
    api, wk = s["rss_api_mib"], s["rss_worker_mib"]
    print(f"peak RSS (VmHWM): API {' + '.join(f'{v:.0f}' for v in api.values())} = "
          f"{sum(api.values()):.0f} MiB; job worker {sum(wk.values()):.0f} MiB")
    c = s["cpu_s"]
    print(f"CPU during the {c['wall']:.0f} s of load: API {c['api']:.1f} s, job worker "
          f"{c['worker']:.1f} s, load generator {c['loadgen']:.1f} s (same 2 cores)")
    print(f"closed-loop saturation (the scaling phase's median round): "
          f"{s['saturation_rps']:.1f} req/s, p99 "
          f"{ms(s['saturation_p99'])} ms, errors {s['sat_errors'] or 0}")
    q = s["saturation_cpu_ms_per_request"]
    print(f"  CPU per request of the mix: API {q['api']:.2f} ms, PostgreSQL at least "
          f"{q['postgres']:.2f} ms, load generator {q['loadgen']:.2f} ms; the whole machine "
          f"{q['machine']:.2f} ms (rest: SeaweedFS, the job worker, the system)")


def targets(configs: list[dict[str, Any]], scaling: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets beside the figures (printed, never asserted). Scaling: the median
    round's requests per second of each worker count."""
    def rps(runs: dict[int, list[Saturation]], workers: int) -> float | None:
        return median_saturation(runs[workers]).rps if runs.get(workers) else None

    bare1, bare2 = rps(scaling["bare"], 1), rps(scaling["bare"], 2)
    prod1, prod2 = rps(scaling["product"], 1), rps(scaling["product"], 2)
    bare_ratio = bare2 / bare1 if bare1 and bare2 else None
    prod_ratio = prod2 / prod1 if prod1 and prod2 else None
    share = prod_ratio / bare_ratio if prod_ratio and bare_ratio else None
    records = [c["records"] for c in configs] + [scaling["records"]]

    def drained(q: dict[str, int]) -> bool:
        return sum(q.get(k, 0) for k in ("pending", "running", "dead", "media_pending")) == 0

    return {
        "bare_rps": [bare1, bare2], "product_rps": [prod1, prod2],
        "bare_ratio": bare_ratio, "product_ratio": prod_ratio, "scaling_share": share,
        "rounds": {kind: {w: [round(r.rps, 1) for r in runs] for w, runs in scaling[kind].items()}
                   for kind in ("product", "bare")},
        "scaling_records": scaling["records"],
        "zero_errors": all(c["error_count"] == 0 for c in configs),
        "zero_lost_or_duplicated": all(r["lost"] == 0 and r["duplicated"] == 0 for r in records),
        "p99_under_1s": all(c["non_upload_p99"] < TARGET_P99_S for c in configs),
        "queue_drained": all(drained(c["queue_after_drain"]) for c in configs),
        "scaling_80pct": share is not None and share >= TARGET_SCALING,
    }


def print_targets(t: dict[str, Any], configs: list[dict[str, Any]], crews: int) -> None:
    def f(v: float | None, fmt: str = "{:.1f}") -> str:
        return "-" if v is None else fmt.format(v)

    rounds = t["rounds"]
    print("\n== scaling (closed loop, 2 workers / 1 worker, same client, same run; "
          f"{len(next(iter(rounds['product'].values()), []))} alternating rounds, median) ==")
    for kind, label in (("product", "product"), ("bare", "bare endpoint")):
        for w, values in rounds[kind].items():
            print(f"{label}, {w} worker(s), req/s by round: "
                  f"{', '.join(f'{v:.1f}' for v in values)}")
    sr = t["scaling_records"]
    print(f"orders the saturations created: lost {sr['lost']}, duplicated {sr['duplicated']}")
    print(f"bare FastAPI endpoint: {f(t['bare_rps'][0])} -> {f(t['bare_rps'][1])} req/s, "
          f"ratio {f(t['bare_ratio'], '{:.2f}')} (the machine's ceiling)")
    print(f"product read/write mix: {f(t['product_rps'][0])} -> {f(t['product_rps'][1])} req/s, "
          f"ratio {f(t['product_ratio'], '{:.2f}')}")
    share = t["scaling_share"]
    print(f"product ratio / bare ratio: {f(share and share * 100, '{:.0f}')} %")
    print(f"\n== the issue's targets at {crews} crews (figures above; not asserted) ==")
    rows = [
        ("zero errors", t["zero_errors"], ", ".join(str(c["error_count"]) for c in configs)),
        ("zero lost or duplicated records", t["zero_lost_or_duplicated"],
         ", ".join(f"{r['lost']}/{r['duplicated']}" for r in
                   [c["records"] for c in configs] + [t["scaling_records"]])),
        ("p99 < 1 s for non-upload requests", t["p99_under_1s"],
         ", ".join(f"{ms(c['non_upload_p99'])} ms" for c in configs)),
        ("every queued job ran (none pending/dead)", t["queue_drained"], ""),
        ("2 workers >= 80 % of the bare scaling", t["scaling_80pct"],
         f(t["scaling_share"] and t["scaling_share"] * 100, "{:.0f} %")),
    ]
    for name, held, figures in rows:
        print(f"  [{'met' if held else 'NOT met'}] {name}: {figures}")


# -- docs/capacity.md, written from the figures ---------------------------------------------------

TIERS = (("district", 500), ("city", 5_000), ("province", 50_000))


def machine() -> str:
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown CPU")
    return (f"{os.cpu_count()} cores ({model}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def working_days(year: int) -> int:
    import chinese_calendar

    return len(chinese_calendar.get_workdays(date(year, 1, 1), date(year, 12, 31)))


def sizing(per: dict[str, float], args: argparse.Namespace, days: int) -> list[dict[str, Any]]:
    out = []
    for name, crews in TIERS:
        per_day = crews * args.connections_per_crew_day
        per_year = per_day * days
        busy_per_s = per_day / (args.working_hours * 3600) * args.peak_factor
        out.append({
            "tier": name, "crews": crews, "per_day": per_day, "per_year": per_year,
            "api_cores": max(1, math.ceil(busy_per_s * per["api_cpu_s"] / args.utilisation)),
            "worker_cores": max(1, math.ceil(busy_per_s * per["worker_cpu_s"]
                                             / args.utilisation)),
            "db_rows": per_year * per["db_rows"], "db_bytes": per_year * per["db_bytes"],
            "object_bytes": per_year * per["object_bytes"],
        })  # fmt: skip
    return out


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return str(n)


def capacity_doc(configs: list[dict[str, Any]], t: dict[str, Any], args: argparse.Namespace,
                 command: str, started: datetime) -> str:
    """The capacity page: the run's figures, the assumptions (flags) and the sizing."""
    basis = max(configs, key=lambda c: c["workers"])
    per = basis["per_connection"]
    days = args.working_days or working_days(started.year)
    tiers = sizing(per, args, days)
    lines = [
        "# Capacity: what a district, a city and a province need",
        "",
        "<!-- written by benches/bench_load.py --write-capacity; do not edit by hand: run it "
        "again -->",
        "",
        f"Written by `{command}` at {started:%Y-%m-%d %H:%M} UTC on {machine()}, from the "
        "figures of that run (PostgreSQL, SeaweedFS, the API in "
        f"`FIELDOPS_ENV={args.env}`, one `fieldops worker`; the load generator on the same "
        "cores).",
        "",
        "## Measured in the run",
        "",
        "| configuration | flows/min | req/s | non-upload p99 | upload p99 | errors | lost / dup "
        "| API peak RSS | worker peak RSS | saturation req/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:
        lines.append(
            f"| {c['name']} | {c['flows_per_min']:.1f} | {c['rps']:.1f} | "
            f"{ms(c['non_upload_p99'])} ms | {ms(c['upload_p99'])} ms | {c['error_count']} | "
            f"{c['records']['lost']} / {c['records']['duplicated']} | "
            f"{sum(c['rss_api_mib'].values()):.0f} MiB | "
            f"{sum(c['rss_worker_mib'].values()):.0f} MiB | {c['saturation_rps']:.1f} |")
    lines += capacity_body(basis, per, t, args, days, tiers)
    return "\n".join(lines) + "\n"


def capacity_body(basis: dict[str, Any], per: dict[str, float], t: dict[str, Any],
                  args: argparse.Namespace, days: int, tiers: list[dict[str, Any]]) -> list[str]:
    share = t["scaling_share"]
    lines = [
        "",
        f"Scaling (closed loop, 2 workers over 1, the median of {args.scaling_rounds} "
        "alternating rounds): bare FastAPI endpoint "
        f"{t['bare_ratio'] or float('nan'):.2f}x, the product's read/write mix "
        f"{t['product_ratio'] or float('nan'):.2f}x, i.e. "
        f"{'-' if share is None else f'{share * 100:.0f}'} % of the machine's ceiling "
        "(the issue's target: at least 80 %).",
        "",
        f"Per connection (one one-visit flow: {PHOTOS_PER_FLOW} photos, contract, kit, two "
        f"checks), measured with {basis['name']}: the run's increase divided by the flows' "
        f"worth of evidence photos ({per['equivalents']:.1f} flows' worth; a flow that did not "
        "finish counts by the photos it sent):",
        "",
        f"- API CPU: {per['api_cpu_s']:.2f} core-seconds (planners' report reads included, "
        f"{args.planners} planners per {args.crews} crews)",
        f"- job worker CPU: {per['worker_cpu_s']:.2f} core-seconds (photo analysis, barcode)",
        f"- PostgreSQL: {per['db_rows']:.0f} rows, {human(per['db_bytes'])} "
        "(pg_database_size, indexes and audit trail included)",
        f"- object storage: {per['objects']:.1f} objects, {human(per['object_bytes'])} "
        "(photos, thumbnails, signature, signed contract)",
        "",
        "Largest tables per connection: " + ", ".join(
            f"{name} {human(b)}" for name, b in basis["top_tables"]) + ".",
        "",
        "## Assumptions (the bench's flags)",
        "",
        f"- connections per crew per working day: {args.connections_per_crew_day:g} "
        "(`--connections-per-crew-day`)",
        f"- working days per year: {days} (`--working-days`; default: the Chinese calendar's "
        "working days of the year, holidays and make-up days included)",
        f"- working hours per day: {args.working_hours:g} (`--working-hours`)",
        f"- peak factor (busiest hour over the day's average): {args.peak_factor:g} "
        "(`--peak-factor`)",
        f"- target CPU utilisation at the peak: {args.utilisation:.0%} (`--utilisation`)",
        f"- photos per connection: {PHOTOS_PER_FLOW} (six ~2 MB photos and the barcode photo: "
        "what the flow sends)",
        "",
        "Cores = connections per second in the peak hour x CPU seconds per connection / "
        "utilisation, rounded up. Storage grows by a year of evidence per year kept. The cores "
        "count CPU only: they hold only where the targets below held (a service that stalls on "
        "a lock or a pool does not get faster with more cores).",
        "",
        "Targets in this run: " + "; ".join(
            f"{name} {'met' if t[key] else 'NOT met'}" for key, name in (
                ("zero_errors", "zero errors"),
                ("zero_lost_or_duplicated", "zero lost or duplicated records"),
                ("p99_under_1s", "p99 < 1 s for non-upload requests"),
                ("queue_drained", "every queued job ran"),
                ("scaling_80pct", "2 workers >= 80 % of the bare scaling"))) + ".",
        "",
        "## Sizing",
        "",
        "| tier | crews | connections/day | connections/year | API cores | job-worker cores "
        "| PostgreSQL rows/year | PostgreSQL size/year | object storage/year |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in tiers:
        lines.append(
            f"| {s['tier']} | {s['crews']:,} | {s['per_day']:,.0f} | {s['per_year']:,.0f} | "
            f"{s['api_cores']} | {s['worker_cores']} | {s['db_rows']:,.0f} | "
            f"{human(s['db_bytes'])} | {human(s['object_bytes'])} |")
    lines += [
        "",
        "Not measured here: network between hosts, PostgreSQL and the object store on hosts of "
        "their own (they shared the cores here), the planners of a province (their reports "
        "scan more rows as data grows).",
    ]
    return lines


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--crews", type=int, default=50)
    p.add_argument("--seconds", type=float, default=90.0,
                   help="flows start during this long, per configuration")
    p.add_argument("--grace-s", type=float, default=120.0,
                   help="flows begun in time may finish during this long after it")
    p.add_argument("--think-s", type=float, default=3.0, help="between steps (x0.5-1.5)")
    p.add_argument("--upload-mbps", type=float, default=2.0, help="MB/s per upload")
    p.add_argument("--planners", type=int, default=3)
    p.add_argument("--worker-concurrency", type=int, default=4,
                   help="threads of the one job worker process")
    p.add_argument("--workers", default="1,2", help="API worker counts, one configuration each")
    p.add_argument("--saturate-s", type=float, default=15.0,
                   help="measured closed-loop saturation per round and worker count")
    p.add_argument("--warmup-s", type=float, default=3.0,
                   help="closed-loop warm-up of each fresh server before it is measured")
    p.add_argument("--scaling-rounds", type=int, default=3,
                   help="alternating rounds of the scaling phase (the median is reported)")
    p.add_argument("--saturate-connections", type=int, default=16)
    p.add_argument("--ceiling-s", type=float, default=8.0)
    p.add_argument("--drain-s", type=float, default=180.0, help="bound of the queue's drain")
    p.add_argument("--demo-months", type=int, default=0, help="months of demo history")
    p.add_argument("--env", choices=["production", "development"], default="production")
    p.add_argument("--pg-url", default=os.environ.get(PG_ENV), help=f"default: ${PG_ENV}")
    p.add_argument("--json", type=Path, help="write the figures as JSON here")
    p.add_argument("--logs", type=Path, help="copy the servers' and clients' logs here")
    p.add_argument("--write-capacity", nargs="?", const=ROOT / "docs" / "capacity.md",
                   type=Path, help="write docs/capacity.md (or the path given) from the figures")
    p.add_argument("--connections-per-crew-day", type=float, default=3.0)
    p.add_argument("--working-days", type=int, default=0, help="0: from the Chinese calendar")
    p.add_argument("--working-hours", type=float, default=8.0)
    p.add_argument("--peak-factor", type=float, default=2.0)
    p.add_argument("--utilisation", type=float, default=0.7)
    args = p.parse_args(argv)
    if not args.pg_url:
        p.error(f"PostgreSQL is needed: --pg-url or ${PG_ENV}")
    args.worker_counts = [int(w) for w in args.workers.split(",")]
    return args


def bench(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from field_api.sms.fake_gateway import FakeSmsGateway
    from tests import s3server

    gateway = FakeSmsGateway().start()
    args.gateway_url = gateway.url
    s3 = s3server.start(root / "seaweedfs", bucket="fieldops-load")
    try:
        runs = [run_config(args, w, n, s3, gateway, root) for n, w in
                enumerate(args.worker_counts)]
        scaling = run_scaling(args, s3, gateway, root)
    finally:
        s3.stop()
        gateway.stop()
    for run in runs:  # each configuration's saturation figures: its median round
        median = median_saturation(scaling["product"][run.workers])
        run.saturation, run.extra["saturation_cpu_s"] = median.result, median.cpu_s
    configs = [summarise(r, args) for r in runs]
    bares = [{"name": f"bare endpoint, {w} worker{'s' if w > 1 else ''}", "workers": w,
              "saturation_rps": median_saturation(rounds).rps,
              "loadgen_cpu_s": median_saturation(rounds).cpu_s["loadgen"]}
             for w, rounds in scaling["bare"].items()]
    return {"configs": configs, "bare": bares, "targets": targets(configs, scaling),
            "sms_messages": len(gateway.messages())}


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    started = datetime.now(UTC)
    command = "python benches/bench_load.py " + " ".join(argv)
    print(f"{machine()}\nAPI in FIELDOPS_ENV={args.env}, one job worker process, PostgreSQL "
          f"throw-away databases next to {args.pg_url.split('@')[-1]}, SeaweedFS on loopback; "
          f"configurations: {args.workers} API worker(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        result = bench(args, Path(tmp))
    for c in result["configs"]:
        print_config(c)
    for b in result["bare"]:
        print(f"\n{b['name']}: {b['saturation_rps']:.1f} req/s (load generator "
              f"{b['loadgen_cpu_s']:.1f} s CPU)")
    print_targets(result["targets"], result["configs"], args.crews)
    result |= {"command": command, "started": started.isoformat(), "machine": machine(),
               "env": args.env, "args": {k: str(v) for k, v in vars(args).items()}}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    if args.write_capacity:
        args.write_capacity.write_text(
            capacity_doc(result["configs"], result["targets"], args, command, started),
            encoding="utf-8")
        print(f"\nwrote {args.write_capacity}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "setup":
        setup(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(sys.argv[1:])
