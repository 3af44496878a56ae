"""One-time codes for the customer's consent to sign: 6 digits, stored hashed, expiring,
with a limited number of attempts.

Pure over values (the clock and the pepper come in as arguments): the contracts service
keeps a :class:`OneTimeCode`'s fields in its table and calls :meth:`OneTimeCode.attempt`.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from hashlib import sha256

CODE_DIGITS = 6


class OtpOutcome(StrEnum):
    """What one attempt at entering the code gave."""

    accepted = "accepted"
    wrong = "wrong"
    expired = "expired"
    exhausted = "exhausted"  # no attempts left (even a right code is refused now)
    used = "used"  # the code was already accepted once


def generate_code() -> str:
    """A uniformly random 6-digit code (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(code: str, *, salt: str, pepper: str) -> str:
    """HMAC-SHA256 of the code under the server's pepper and a per-code salt.

    A bare sha256 of six digits is reversed by trying a million values; the keyed hash is not
    without the pepper, so the stored hash and the signed record's proof reveal nothing.
    """
    return hmac.new(pepper.encode(), f"{salt}:{code}".encode(), sha256).hexdigest()


@dataclass
class OneTimeCode:
    """The stored state of one issued code (never the code itself)."""

    salt: str
    code_hash: str
    expires_at: datetime
    max_attempts: int
    attempts: int = 0
    accepted_at: datetime | None = None

    @classmethod
    def issue(
        cls, *, now: datetime, ttl: timedelta, max_attempts: int, pepper: str
    ) -> tuple[OneTimeCode, str]:
        """Issue a new code: return its stored state and the plain code to send once."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if ttl <= timedelta(0):
            raise ValueError("the code's lifetime must be positive")
        code = generate_code()
        salt = secrets.token_hex(16)
        state = cls(
            salt=salt,
            code_hash=hash_code(code, salt=salt, pepper=pepper),
            expires_at=now + ttl,
            max_attempts=max_attempts,
        )
        return state, code

    @property
    def attempts_left(self) -> int:
        """How many more tries the customer has."""
        return max(self.max_attempts - self.attempts, 0)

    def attempt(self, code: str, *, now: datetime, pepper: str) -> OtpOutcome:
        """Check an entered code, counting the attempt; mutates ``attempts``/``accepted_at``."""
        if self.accepted_at is not None:
            return OtpOutcome.used
        if now >= self.expires_at:
            return OtpOutcome.expired
        if self.attempts >= self.max_attempts:
            return OtpOutcome.exhausted
        self.attempts += 1
        candidate = hash_code(code.strip(), salt=self.salt, pepper=pepper)
        # Constant-time comparison: response timing must not leak matching prefixes.
        if hmac.compare_digest(candidate, self.code_hash):
            self.accepted_at = now
            return OtpOutcome.accepted
        return OtpOutcome.wrong
