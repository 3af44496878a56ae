"""The audit trail's keys, loaded once per process from files outside the database.

- The chain key (``FIELDOPS_AUDIT_KEY_PATH``): a random secret; every link is an HMAC with it.
- The checkpoint key (``FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH``): Ed25519; it signs checkpoints of
  the chain's head, and its public half (``<name>.pub``) lets anyone check them.

Development and tests generate both on first use (mode 0600); production refuses to start
without them. :func:`install` is called by ``create_app`` and by every command that writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from field_api import keyfiles
from field_api.config import Settings


class AuditKeyMissing(RuntimeError):
    """No audit key was installed in this process (a wiring error)."""


@dataclass(frozen=True)
class AuditKeys:
    chain_key: bytes
    checkpoint_key: Ed25519PrivateKey

    @property
    def chain_key_id(self) -> str:
        return keyfiles.fingerprint(b"fieldops-audit-chain:" + self.chain_key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.checkpoint_key.public_key()

    @property
    def checkpoint_key_id(self) -> str:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return keyfiles.fingerprint(raw)


_installed: AuditKeys | None = None
_cache: dict[tuple[str, str], AuditKeys] = {}


def load(settings: Settings) -> AuditKeys:
    """Read (in development: create) the key files named by ``settings``."""
    chain_path = settings.audit_key_path.resolve()
    checkpoint_path = settings.audit_checkpoint_key_path.resolve()
    cache_key = (str(chain_path), str(checkpoint_path))
    found = _cache.get(cache_key)
    if found is None:
        create = not settings.is_production
        found = AuditKeys(
            chain_key=keyfiles.load_secret(
                chain_path, create_if_missing=create, what="audit chain key"
            ),
            checkpoint_key=keyfiles.load_ed25519(
                checkpoint_path, create_if_missing=create, what="audit checkpoint key"
            ),
        )
        _cache[cache_key] = found
    return found


def install(settings: Settings) -> AuditKeys:
    """Load the keys of ``settings`` and make them this process's audit keys."""
    global _installed
    _installed = load(settings)
    return _installed


def current() -> AuditKeys:
    """The installed keys; raises when nothing installed them."""
    if _installed is None:
        raise AuditKeyMissing(
            "no audit key installed: create_app() and the fieldops commands install it"
        )
    return _installed
