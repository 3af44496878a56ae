"""Load benchmark of the database: 16 concurrent connections reading and writing work orders.

    .venv/bin/python benches/bench_db_load.py [--seconds 20] [--max-requests 20000]
        [--connections 16] [--pg-url postgresql+psycopg://...]

Each backend is served by a real uvicorn (a subprocess on 127.0.0.1, a free port) running
``create_app`` as ``fieldops serve`` does, on a fresh database with the schema and the demo
data (``fieldops demo load``):

(a) ``sqlite-old``: a WAL SQLite file where every transaction, reads included, begins
    ``BEGIN IMMEDIATE`` -- the former behaviour, kept only as this bench's baseline through
    ``make_engine(url, sqlite_immediate_reads=True)`` (``serve --immediate-reads`` below);
(b) ``sqlite-new``: the same file setup with the current engine: reads DEFERRED, writes
    IMMEDIATE;
(c) ``postgresql``: a throw-away database created next to ``--pg-url`` or
    ``FIELDOPS_TEST_DATABASE_URL`` and dropped afterwards (skipped, with a note, when
    PostgreSQL is unreachable).

The load: ``--connections`` client threads, each with its own keep-alive connection, send
GET /work-orders?limit=20 as the planner and GET /work-orders/{id} as a crew member (3 in 4
requests) and POST /work-orders as the service role (1 in 4, a new order each), until
``--seconds`` have passed or ``--max-requests`` were sent. One table compares the backends;
the figure to watch is SQLite-new's GET p99 beside PostgreSQL's (target: within 3x).
Nothing is asserted: the figures are printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLANNER = "fo_demo_planner_00000000000000"
CREW = "fo_demo_crew_a_000000000000000"
SERVICE = "fo_demo_service_00000000000000"
PG_ENV = "FIELDOPS_TEST_DATABASE_URL"


# -- the server side (subcommands run in a subprocess whose cwd is the backend's folder) ------


def setup_schema(url: str) -> None:
    """The schema from the models (what ``fieldops db upgrade`` builds: head == models)."""
    from field_api.db import Base, make_engine
    from field_api.wiring import import_all_models

    import_all_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def serve(port: int, immediate_reads: bool) -> None:
    """``fieldops serve`` with the engine option of the baseline when asked."""
    import uvicorn

    from field_api.config import get_settings
    from field_api.db import make_engine, make_session_factory
    from field_api.main import create_app

    settings = get_settings()
    engine = make_engine(settings.database_url, sqlite_immediate_reads=immediate_reads)
    app = create_app(settings, session_factory=make_session_factory(engine))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- the bench side ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDOPS_")}
    env.update({"FIELDOPS_ENV": "development", "FIELDOPS_DATABASE_URL": url})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def prepare(url: str, workdir: Path) -> None:
    """Schema, then the demo data through the real command (``fieldops demo load``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for args in (
        [sys.executable, __file__, "setup", "--url", url],
        [sys.executable, "-m", "fieldops.cli", "demo", "load"],
    ):
        done = subprocess.run(
            args, cwd=workdir, env=_env(url), capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[1:3])} failed:\n{done.stderr[-2000:]}")


class Server:
    def __init__(self, url: str, workdir: Path, *, immediate_reads: bool) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, __file__, "serve", "--port", str(self.port)]
        if immediate_reads:
            args.append("--immediate-reads")
        self.log = (workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            args, cwd=workdir, env=_env(url), stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while True:  # wait until it accepts connections (bounded)
            try:
                httpx.get(f"{self.base}/healthz", timeout=2)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = workdir / "server.log"
                    raise RuntimeError(f"server did not start; see {log}") from None
                time.sleep(0.2)  # polling a starting server, not a measurement

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


def order_payload(n: int) -> dict[str, Any]:
    """A new connection application (tests/builders.py ``order_payload`` on demo data)."""
    return {
        "customer_name": "压测用户",
        "customer_phone": f"139{n % 100_000_000:08d}",
        "customer_id_number": f"BENCH{secrets.token_hex(6)}",
        "category": "residential",
        "capacity_kw": 8.0,
        "phases": 1,
        "address": f"深圳市南山区科技园压测{n}号",
        "lon": 113.9305,
        "lat": 22.5333,
        "district_code": "SZ-NS",
        "crew_code": "CREW-A",
        "area": "urban",
        "channel": "app",
        "applied_on": date.today().isoformat(),
    }


@dataclass
class Sample:
    kind: str  # "GET" or "POST"
    seconds: float
    ok: bool
    status: str


@dataclass
class Result:
    backend: str
    wall_s: float
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    def of(self, kind: str) -> list[float]:
        return [s.seconds for s in self.samples if s.kind == kind and s.ok]

    @property
    def errors(self) -> list[Sample]:
        return [s for s in self.samples if not s.ok]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(
    base: str, *, connections: int, seconds: float, max_requests: int
) -> tuple[list[Sample], float]:
    crew_orders = httpx.get(
        f"{base}/work-orders?limit=100", headers={"Authorization": f"Bearer {CREW}"}, timeout=60
    ).json()
    order_ids = [o["id"] for o in crew_orders]
    if not order_ids:
        raise RuntimeError("the crew sees no demo order")
    counter = iter(range(10**12))
    counter_lock = threading.Lock()
    samples: list[Sample] = []
    samples_lock = threading.Lock()
    start = threading.Barrier(connections + 1)
    deadline = [0.0]

    def next_number() -> int | None:
        with counter_lock:
            n = next(counter)
        return n if n < max_requests else None

    def worker() -> None:
        mine: list[Sample] = []
        with httpx.Client(base_url=base, timeout=120) as client:
            try:
                client.get("/healthz")  # open this thread's keep-alive connection
            finally:
                start.wait()
            while time.monotonic() < deadline[0]:
                n = next_number()
                if n is None:
                    break
                if n % 4 == 3:
                    kind, method, path = "POST", "POST", "/work-orders"
                    headers = {"Authorization": f"Bearer {SERVICE}"}
                    body: dict[str, Any] | None = order_payload(n)
                elif n % 2 == 0:
                    kind, method, path = "GET", "GET", "/work-orders?limit=20"
                    headers, body = {"Authorization": f"Bearer {PLANNER}"}, None
                else:
                    kind, method = "GET", "GET"
                    path = f"/work-orders/{order_ids[n % len(order_ids)]}"
                    headers, body = {"Authorization": f"Bearer {CREW}"}, None
                t0 = time.perf_counter()
                try:
                    response = client.request(method, path, headers=headers, json=body)
                    ok = response.status_code < 400
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    ok, status = False, type(exc).__name__
                mine.append(Sample(kind, time.perf_counter() - t0, ok, status))
        with samples_lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + seconds
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return samples, time.perf_counter() - t0


def bench_backend(
    name: str, url: str, workdir: Path, *, immediate_reads: bool, args: argparse.Namespace
) -> Result:
    print(f"[{name}] preparing {url.split('@')[-1]} ...", flush=True)
    prepare(url, workdir)
    server = Server(url, workdir, immediate_reads=immediate_reads)
    try:
        print(f"[{name}] {args.connections} connections, {args.seconds:g} s ...", flush=True)
        samples, wall = run_load(
            server.base,
            connections=args.connections,
            seconds=args.seconds,
            max_requests=args.max_requests,
        )
    finally:
        server.stop()
    return Result(name, wall, samples)


def create_pg_database(base_url: str) -> tuple[str, Any] | str:
    """A throw-away database next to ``base_url``: (its URL, the admin engine) or a note."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(base_url)
    name = f"{base.database}_bench_{secrets.token_hex(3)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        return f"PostgreSQL unreachable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    print(f"[postgresql] server {version}, throw-away database {name}")
    return base.set(database=name).render_as_string(hide_password=False), admin


def drop_pg_database(url: str, admin: Any) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def _fmt(v: float, unit: str = "ms") -> str:
    if v != v:  # NaN
        return "-"
    return f"{v * 1000:.0f}" if unit == "ms" else f"{v:.1f}"


def print_table(results: list[Result]) -> None:
    header = (
        f"{'backend':<11} {'GET/s':>7} {'GET p50':>8} {'GET p99':>8} "
        f"{'POST/s':>7} {'POST p50':>9} {'POST p99':>9} {'errors':>7} {'requests':>9}"
    )
    print()
    print(header + "   (latencies in ms)")
    print("-" * len(header))
    for r in results:
        if r.note:
            print(f"{r.backend:<11} {r.note}")
            continue
        gets, posts = r.of("GET"), r.of("POST")
        print(
            f"{r.backend:<11} {_fmt(len(gets) / r.wall_s, 'n'):>7} {_fmt(_pct(gets, 0.5)):>8} "
            f"{_fmt(_pct(gets, 0.99)):>8} {_fmt(len(posts) / r.wall_s, 'n'):>7} "
            f"{_fmt(_pct(posts, 0.5)):>9} {_fmt(_pct(posts, 0.99)):>9} "
            f"{len(r.errors):>7} {len(r.samples):>9}"
        )
    for r in results:
        if r.errors:
            kinds = statistics.multimode(f"{e.kind} {e.status}" for e in r.errors)
            print(f"  {r.backend} errors, most common: {', '.join(kinds)}")
    by_name = {r.backend: r for r in results if not r.note}
    new, old, pg = by_name.get("sqlite-new"), by_name.get("sqlite-old"), by_name.get("postgresql")
    if new and old:
        ratio = _pct(old.of("GET"), 0.99) / _pct(new.of("GET"), 0.99)
        print(f"\nGET p99 sqlite-old / sqlite-new: {ratio:.1f}x")
    if new and pg:
        ratio = _pct(new.of("GET"), 0.99) / _pct(pg.of("GET"), 0.99)
        print(f"GET p99 sqlite-new / postgresql: {ratio:.2f}x (target: within 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command")
    setup_cmd = sub.add_parser("setup", help="(internal) create the schema")
    setup_cmd.add_argument("--url", required=True)
    serve_cmd = sub.add_parser("serve", help="(internal) serve the app on 127.0.0.1")
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--immediate-reads", action="store_true")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap of each phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pg-url", default=os.environ.get(PG_ENV), help=f"default: ${PG_ENV}")
    parser.add_argument(
        "--only", choices=["sqlite-old", "sqlite-new", "postgresql"], action="append"
    )
    args = parser.parse_args()
    if args.command == "setup":
        setup_schema(args.url)
        return
    if args.command == "serve":
        serve(args.port, args.immediate_reads)
        return

    wanted = args.only or ["sqlite-old", "sqlite-new", "postgresql"]
    print(
        f"python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs; {args.connections} connections, "
        f"{args.seconds:g} s or {args.max_requests} requests per backend"
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-db-load-") as tmp:
        root = Path(tmp)
        for name in ("sqlite-old", "sqlite-new"):
            if name in wanted:
                url = f"sqlite:///{root / name / 'bench.db'}"
                results.append(
                    bench_backend(
                        name,
                        url,
                        root / name,
                        immediate_reads=name == "sqlite-old",
                        args=args,
                    )
                )
        if "postgresql" in wanted:
            created = create_pg_database(args.pg_url) if args.pg_url else f"{PG_ENV} not set"
            if isinstance(created, str):
                print(f"[postgresql] skipped: {created}")
                results.append(Result("postgresql", 0.0, note=f"skipped: {created}"))
            else:
                pg_url, admin = created
                try:
                    results.append(
                        bench_backend(
                            "postgresql", pg_url, root / "pg", immediate_reads=False, args=args
                        )
                    )
                finally:
                    drop_pg_database(pg_url, admin)
    print_table(results)


if __name__ == "__main__":
    main()
