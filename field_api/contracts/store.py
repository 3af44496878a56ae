"""Where signed contracts and signature images are kept: the media slice's content-addressed
store under ``settings.media_dir`` (each content stored once, written atomically)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from field_api.common.storage import MediaStore


def put(media_dir: Path, data: bytes, *, session: Session | None = None) -> str:
    """Store ``data`` (once) and return its sha256.

    With ``session``, a blob this call created is removed again if the session's transaction
    rolls back, so a failed signing leaves no file behind.
    """
    store = MediaStore(media_dir)
    blob = store.put_bytes(data)
    if blob.created and session is not None:
        _remove_on_rollback(session, store, blob.sha256)
    return blob.sha256


def remove(media_dir: Path, sha256: str) -> None:
    """Delete a blob (to undo a write whose transaction rolled back)."""
    MediaStore(media_dir).remove(sha256)


def read(media_dir: Path, sha256: str) -> bytes:
    """The stored bytes, checked against their digest (a damaged file is an error, not data)."""
    data = MediaStore(media_dir).path_of(sha256).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise OSError(f"stored file {sha256} does not match its digest")
    return data


def _remove_on_rollback(session: Session, store: MediaStore, sha256: str) -> None:
    """Delete the new blob if the session's outermost transaction rolls back.

    ``after_soft_rollback`` fires even when no SQL ran yet (``after_rollback`` would not);
    savepoint rollbacks inside the transaction leave the blob alone. The listeners stay on the
    session (one per request) and act once: SQLAlchemy forbids removing a listener while its
    event is being dispatched.
    """
    settled = False

    def _undo(_session: Session, previous: SessionTransaction) -> None:
        nonlocal settled
        if not settled and previous.parent is None and not previous.nested:
            settled = True
            store.remove(sha256)

    def _kept(_session: Session) -> None:
        nonlocal settled
        settled = True

    event.listen(session, "after_soft_rollback", _undo)
    event.listen(session, "after_commit", _kept)
