"""Job handlers for the multi-process worker tests (``--handlers-from
tests.field_api.jobs.probe:handlers``).

``probe.effect`` applies one effect per job: it appends the job id to ``effects.log`` unless
the id is already there (checked and written under a file lock), so it is idempotent, as every
handler must be under at-least-once delivery. Each invocation is logged first in ``runs.log``
(``job_id pid``). With ``"block": "before"`` or ``"after"`` the handler writes a marker
``blocked-<job>-<pid>`` and waits for the file ``release`` before (or after) applying the
effect, so a test can kill its worker mid-job; the wait is bounded.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RELEASE_WAIT_S = 120.0


def _append(path: Path, line: str) -> None:
    with path.open("a") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


def _apply_once(folder: Path, job_id: int) -> None:
    with (folder / "effects.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log = folder / "effects.log"
        done = log.read_text().split() if log.exists() else []
        if str(job_id) not in done:
            _append(log, str(job_id))


def _wait_for_release(folder: Path, job_id: int) -> None:
    (folder / f"blocked-{job_id}-{os.getpid()}").touch()
    deadline = time.monotonic() + RELEASE_WAIT_S
    while not (folder / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released the job")
        time.sleep(0.02)


def effect(ctx: object, job: Any) -> None:
    folder = Path(job.payload["dir"])
    _append(folder / "runs.log", f"{job.id} {os.getpid()}")
    block = job.payload.get("block")
    if block == "before":
        _wait_for_release(folder, job.id)
    _apply_once(folder, job.id)
    if block == "after":
        _wait_for_release(folder, job.id)


def handlers() -> dict[str, Callable[[object, Any], None]]:
    return {"probe.effect": effect}
