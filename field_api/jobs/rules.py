"""Pure rules of the job queue: states, and when a failed job runs again."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    dead = "dead"


UNFINISHED = (JobState.pending.value, JobState.running.value)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``base_s * factor**(attempts-1)``, at most ``max_s``."""

    base_s: float = 10.0
    factor: float = 2.0
    max_s: float = 3600.0

    def delay_s(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 for the first)."""
        exponent = max(0, attempts - 1)
        try:
            delay = self.base_s * self.factor**exponent
        except OverflowError:
            return self.max_s
        return min(delay, self.max_s)


def gives_up(attempts: int, max_attempts: int) -> bool:
    """Whether a job that failed its ``attempts``-th try goes to the dead-letter list."""
    return attempts >= max_attempts


def clip_error(error: str | None, limit: int = 500) -> str | None:
    """An error message as stored: one line, at most ``limit`` characters."""
    if error is None:
        return None
    line = " ".join(error.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
