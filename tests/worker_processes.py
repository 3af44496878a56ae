"""Real ``fieldops worker`` processes for tests: one database, short settings from the test,
each process logging to its own file; all stopped at the end (a frozen one is woken first)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wait_for(
    what: str, condition: Callable[[], bool], *, timeout_s: float, poll_s: float = 0.05
) -> None:
    """Poll a condition until it holds (a deadline, not a timing assumption)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll_s)


class WorkerProcesses:
    """``fieldops worker --queues QUEUES ARGS`` processes on the database at ``url``."""

    def __init__(
        self, url: str, tmp: Path, *, queues: str, env: Mapping[str, str],
        args: Sequence[str] = (), start_timeout_s: float = 90.0,
    ) -> None:  # fmt: skip
        self.tmp = tmp
        self.args = ["--queues", queues, *args]
        self.start_timeout_s = start_timeout_s
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
            **env,
        }

    def start(self, *, concurrency: int = 1) -> subprocess.Popen[bytes]:
        """Start one more worker and wait until it says it has started."""
        log = self.tmp / f"worker-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fieldops.cli", "worker", *self.args,
                 "--concurrency", str(concurrency)],
                env=self.env, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs.append(proc)

        def started() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited: {log.read_text(errors='replace')}")
            return "worker started" in log.read_text(errors="replace")

        wait_for("the worker to start", started, timeout_s=self.start_timeout_s)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a frozen (SIGSTOP) worker must hear SIGTERM
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def worker_processes(
    url: str, tmp: Path, *, queues: str, env: Mapping[str, str], args: Sequence[str] = ()
) -> Iterator[WorkerProcesses]:
    """Worker processes that are all stopped when the block ends, whatever happened in it."""
    running = WorkerProcesses(url, tmp, queues=queues, env=env, args=args)
    try:
        yield running
    finally:
        running.stop_all()
