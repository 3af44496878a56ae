"""Key files kept outside the database: created on first use in development, required in
production, mode 0600, created exclusively so two processes starting at once agree on one key.

Used by the contract signing key (Ed25519), the audit chain's HMAC key and the audit
checkpoint key (Ed25519).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

logger = logging.getLogger(__name__)


class KeyFileError(RuntimeError):
    """A key file is missing, unreadable or of the wrong kind."""


def _write_exclusive(path: Path, data: bytes) -> bool:
    """Write a new 0600 file; False when another process created it first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _warn_if_open(path: Path, what: str) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("%s %s is readable by others (mode %o)", what, path, mode)


def public_key_path_for(private_key_path: Path) -> Path:
    """Where the public key is published next to the private key (``<name>.pub``)."""
    return private_key_path.with_name(private_key_path.name + ".pub")


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse an Ed25519 public key in PEM (a private key's public half is taken too).

    Raises:
        KeyFileError: not an Ed25519 key in PEM.
    """
    try:
        if b"PRIVATE KEY" in pem:
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise KeyFileError("the key is not an Ed25519 key")
            return private.public_key()
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"not a PEM key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("the key is not an Ed25519 key")
    return key


def _write_public_key(path: Path, public_key: Ed25519PublicKey) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(public_key_pem(public_key))
    temporary.replace(path)


def load_ed25519(path: Path, *, create_if_missing: bool, what: str) -> Ed25519PrivateKey:
    """Load an Ed25519 private key (PKCS#8 PEM); generate it (and ``<name>.pub``) if allowed.

    Raises:
        KeyFileError: missing with ``create_if_missing=False``, unreadable or not Ed25519.
    """
    if not path.exists():
        if not create_if_missing:
            raise KeyFileError(
                f"{what} {path} does not exist; provision an Ed25519 PKCS#8 PEM key there "
                "(development generates one on first use)"
            )
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if _write_exclusive(path, pem):
            _write_public_key(public_key_path_for(path), key.public_key())
            logger.info("generated a development %s at %s", what, path)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{what} {path} cannot be loaded: {exc}") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyFileError(f"{what} {path} is not an Ed25519 key")
    _warn_if_open(path, what)
    public_path = public_key_path_for(path)
    if not public_path.exists():
        _write_public_key(public_path, loaded.public_key())
    return loaded


SECRET_BYTES = 32


def load_secret(path: Path, *, create_if_missing: bool, what: str) -> bytes:
    """Load a random secret kept as hex text; generate it if allowed.

    Raises:
        KeyFileError: missing with ``create_if_missing=False``, unreadable or too short.
    """
    if not path.exists():
        if not create_if_missing:
            raise KeyFileError(
                f"{what} {path} does not exist; provision one with "
                f"`python -c 'import secrets; print(secrets.token_hex(32))' > {path}` "
                "and chmod 600 (development generates one on first use)"
            )
        if _write_exclusive(path, (secrets.token_hex(SECRET_BYTES) + "\n").encode()):
            logger.info("generated a development %s at %s", what, path)
    try:
        text = path.read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{what} {path} cannot be loaded: {exc}") from exc
    if len(secret) < 16:
        raise KeyFileError(f"{what} {path} holds {len(secret)} bytes; at least 16 are needed")
    _warn_if_open(path, what)
    return secret


def fingerprint(material: bytes) -> str:
    """A short public name of a key: the first 16 hex digits of sha256 of its bytes."""
    return hashlib.sha256(material).hexdigest()[:16]
