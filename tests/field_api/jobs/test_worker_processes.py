"""Worker processes (``python -m fieldops.cli worker``) sharing one queue, on SQLite (a file in
WAL mode) and PostgreSQL: every job's effect is applied once; a worker killed with SIGKILL or
frozen mid-job leaves the job to another worker once its lease is gone, neither lost nor
applied twice. Handlers: :mod:`tests.field_api.jobs.probe`. Waits poll with a deadline."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from sqlalchemy import select

from field_api.db import make_engine, make_session_factory
from field_api.jobs import service as jobs
from field_api.jobs.models import Job
from tests.worker_processes import WorkerProcesses, wait_for, worker_processes

DEADLINE_S = 90.0
LEASE_S = "2"  # short, so a frozen worker's claim runs out within the test
JOBS = 120


def _wait_for(what: str, condition: Callable[[], bool], *, timeout_s: float = DEADLINE_S) -> None:
    wait_for(what, condition, timeout_s=timeout_s)


def _workers(url: str, tmp: Path) -> AbstractContextManager[WorkerProcesses]:
    """Workers on the ``probe`` queue running the probe handlers, with a short lease."""
    env = {"FIELDOPS_JOBS_LEASE_S": LEASE_S, "FIELDOPS_JOBS_POLL_S": "0.05"}
    args = ["--handlers-from", "tests.field_api.jobs.probe:handlers"]
    return worker_processes(url, tmp, queues="probe", env=env, args=args)


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
        # background work yields the CPU to the API: each worker added FIELDOPS_JOBS_WORKER_NICE
        assert {psutil.Process(pid).nice() for pid in pids} == {os.nice(0) + 10}
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
