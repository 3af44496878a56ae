"""Worker processes (``python -m fieldops.cli worker``) sharing one queue, on SQLite (a file in
WAL mode) and PostgreSQL: every job's effect is applied once; a worker killed with SIGKILL or
frozen mid-job leaves the job to another worker once its lease is gone, neither lost nor
applied twice. Handlers: :mod:`tests.field_api.jobs.probe`. Waits poll with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from field_api.db import make_engine, make_session_factory
from field_api.jobs import service as jobs
from field_api.jobs.models import Job

REPO = Path(__file__).resolve().parents[3]
DEADLINE_S = 90.0
LEASE_S = "2"  # short, so a frozen worker's claim runs out within the test
JOBS = 120


def _wait_for(what: str, condition: Callable[[], bool], *, timeout_s: float = DEADLINE_S) -> None:
    """Poll a condition until it holds (a deadline, not a timing assumption)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Workers:
    """Worker processes on the ``probe`` queue of one database."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.url = url
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "FIELDOPS_ENV": "test",
            "FIELDOPS_DATABASE_URL": url,
            "FIELDOPS_MEDIA_DIR": str(tmp / "media"),
            "FIELDOPS_AUDIT_KEY_PATH": str(tmp / "k" / "chain.key"),
            "FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH": str(tmp / "k" / "cp.key"),
            "FIELDOPS_AUDIT_CHECKPOINT_DIR": str(tmp / "cp"),
            "FIELDOPS_JOBS_LEASE_S": LEASE_S,
            "FIELDOPS_JOBS_POLL_S": "0.05",
        }

    def start(self, *, concurrency: int = 1) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fieldops.cli", "worker", "--queues", "probe",
                 "--concurrency", str(concurrency),
                 "--handlers-from", "tests.field_api.jobs.probe:handlers"],
                env=self.env, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)

        def started() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited: {log.read_text(errors='replace')}")
            return "worker started" in log.read_text(errors="replace")

        _wait_for("the worker to start", started)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def _workers(url: str, tmp: Path) -> Iterator[Workers]:
    running = Workers(url, tmp)
    try:
        yield running
    finally:
        running.stop_all()


def _enqueue(url: str, payloads: list[dict[str, object]]) -> list[int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            return [jobs.enqueue(session, "probe.effect", p, queue="probe") for p in payloads]
    finally:
        engine.dispose()


def _states(url: str) -> dict[int, tuple[str, int]]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(Job.id, Job.state, Job.attempts)).all()
            return {int(i): (str(s), int(a)) for i, s, a in rows}
    finally:
        engine.dispose()


def _all_done(url: str) -> bool:
    return all(state == "done" for state, _ in _states(url).values())


def _runs(folder: Path) -> list[tuple[int, int]]:
    lines = (folder / "runs.log").read_text().splitlines()
    return [(int(a), int(b)) for a, b in (line.split() for line in lines)]


def _effects(folder: Path) -> Counter[int]:
    return Counter(int(x) for x in (folder / "effects.log").read_text().split())


def test_three_workers_on_one_queue_run_every_job_once(committed_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "probe"
    folder.mkdir()
    with _workers(committed_url, tmp_path) as workers:
        pids = {workers.start().pid for _ in range(3)}
        ids = _enqueue(committed_url, [{"dir": str(folder), "n": n} for n in range(JOBS)])
        _wait_for("every job to be done", lambda: _all_done(committed_url))
    assert _effects(folder) == Counter(ids)  # each effect applied exactly once
    runs = _runs(folder)
    assert Counter(job for job, _ in runs) == Counter(ids)  # and each job claimed once
    assert {pid for _, pid in runs} <= pids
    assert len({pid for _, pid in runs}) >= 2  # the queue was shared
    assert set(_states(committed_url).values()) == {("done", 1)}


def test_a_worker_killed_mid_job_leaves_it_to_another(committed_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "probe"
    folder.mkdir()
    with _workers(committed_url, tmp_path) as workers:
        doomed = workers.start(concurrency=2)
        before, after = _enqueue(
            committed_url,
            [{"dir": str(folder), "block": "before"}, {"dir": str(folder), "block": "after"}],
        )
        for job in (before, after):
            marker = folder / f"blocked-{job}-{doomed.pid}"
            _wait_for(f"job {job} to block in the first worker", marker.exists)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        others = _enqueue(committed_url, [{"dir": str(folder), "n": n} for n in range(5)])
        heir = workers.start(concurrency=2)
        for job in (before, after):
            marker = folder / f"blocked-{job}-{heir.pid}"
            _wait_for(f"job {job} to be taken over", marker.exists)
        (folder / "release").touch()
        _wait_for("every job to be done", lambda: _all_done(committed_url))
    assert _effects(folder) == Counter([before, after, *others])  # none lost, none twice
    runs = Counter(job for job, _ in _runs(folder))
    assert runs[before] == 2 and runs[after] == 2  # killed once, run again by the heir
    states = _states(committed_url)
    assert states[before] == ("done", 2) and states[after] == ("done", 2)


def test_a_frozen_worker_loses_its_job_when_the_lease_runs_out(
    committed_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "probe"
    folder.mkdir()
    with _workers(committed_url, tmp_path) as workers:
        frozen = workers.start()
        [job] = _enqueue(committed_url, [{"dir": str(folder), "block": "before"}])
        _wait_for("the job to block", (folder / f"blocked-{job}-{frozen.pid}").exists)
        frozen.send_signal(signal.SIGSTOP)  # alive but silent: no heartbeat renews its lease
        heir = workers.start()
        _wait_for(  # after the lease (2 s) runs out
            "the job to be taken over", (folder / f"blocked-{job}-{heir.pid}").exists
        )
        (folder / "release").touch()
        _wait_for("the job to be done", lambda: _all_done(committed_url))
        frozen.send_signal(signal.SIGCONT)  # it finishes its copy: the late result is dropped
        log = tmp_path / "worker-0.log"
        _wait_for(
            "the frozen worker to find its claim lost",
            lambda: "the claim was lost" in log.read_text(errors="replace"),
        )
    assert _effects(folder) == Counter([job])
    assert _states(committed_url)[job] == ("done", 2)
