"""Who holds a claim: process identities that tell a running process from a dead one.

An owner id is ``host/pid/start`` — the host name, the process id and the process's start
time in clock ticks since boot (Linux ``/proc/<pid>/stat``; a random nonce elsewhere), so a
reused pid is not mistaken for the process that died. An owner may carry a tag after ``#``
(``host/pid/start#tag``): claims of one process that must not renew each other's leases (two
threads analysing photos) use different tags; whether the owner still runs is decided by the
process part alone.

No database here: the media store names its temporary files after their owner with the same
functions.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Owner:
    """A parsed owner id."""

    host: str
    pid: int
    start: str
    tag: str | None = None

    @property
    def process(self) -> str:
        return f"{self.host}/{self.pid}/{self.start}"


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), telling reused pids apart.

    None when no such process runs — a zombie (killed, not yet reaped by its parent) included.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):  # fields[0]: the state
        return None
    return fields[19]


@lru_cache(maxsize=1)
def host() -> str:
    """This machine's name as owner ids carry it (at most 60 characters, no ``/``)."""
    return socket.gethostname()[:60].replace("/", "_") or "localhost"


@lru_cache(maxsize=8)
def _process_owner(pid: int) -> str:
    start = _start_ticks(pid) or secrets.token_hex(4)
    return f"{host()}/{pid}/{start}"


def owner_id(tag: str | None = None) -> str:
    """This process's identity ``host/pid/start``, or ``host/pid/start#tag`` with a tag."""
    base = _process_owner(os.getpid())
    return base if not tag else f"{base}#{tag}"


def owner_of_pid(pid: int) -> str | None:
    """The owner id of another running process of this host (None when it does not run)."""
    start = _start_ticks(pid)
    return None if start is None else f"{host()}/{pid}/{start}"


def parse(owner: str) -> Owner | None:
    """Split an owner id; None when it is not one."""
    process, _, tag = owner.partition("#")
    parts = process.rsplit("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2]:
        return None
    return Owner(host=parts[0], pid=int(parts[1]), start=parts[2], tag=tag or None)


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer runs.

    Another host's process (or an id that does not parse) is never judged gone: only its
    lease's expiry can tell.
    """
    parsed = parse(owner)
    if parsed is None or parsed.host != host():
        return False
    if parsed.pid == os.getpid():
        return parsed.process != _process_owner(parsed.pid)
    start = _start_ticks(parsed.pid)
    if start is not None:
        return start != parsed.start
    if os.path.exists("/proc/self/stat"):
        return True  # /proc works and has no such process
    return not _pid_runs(parsed.pid)  # no /proc (not Linux): a reused pid passes for alive


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
