"""The server's Ed25519 signature over a contract's signing record, carried inside the PDF.

Design (so that anyone holding only the public key can verify a contract file):

1. The final contract PDF ``D`` (rendered with the customer's signature mark) is hashed.
2. The *signing record* — order id, ``sha256(D)``, ``len(D)``, the signature image's sha256,
   the one-time-code verification (an HMAC, never the code), server and device time, GPS and
   the masked signer — is serialised as canonical JSON (sorted keys, no spaces, UTF-8) and
   signed with the server's Ed25519 key.
3. The *envelope* ``{"algorithm", "key_id", "record", "signature"}`` (canonical JSON too) is
   appended to ``D`` as a standard PDF incremental update: an embedded file
   ``fieldops-signature.json`` (visible in any viewer's attachment pane) referenced from a
   new version of the document catalog. Viewers still open the file normally.

Verification takes the envelope from the file, checks the Ed25519 signature over the record,
checks ``sha256(file[:len(D)])`` against the record, and then rebuilds the incremental update
from ``D`` and the envelope and requires it to equal the rest of the file byte for byte. So a
changed byte anywhere — in the contract, the record, the signature or the PDF plumbing around
them — fails verification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from field_api import keyfiles
from field_api.messages import Message, china_minute

logger = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
RECORD_VERSION = 1
ATTACHMENT_NAME = "fieldops-signature.json"
# The first line of the appended update: lets the verifier find where the signed document ends.
UPDATE_MARKER = b"%fieldops-signed-record-v1\n"
_MAX_ENVELOPE_BYTES = 64 * 1024


class SigningKeyError(RuntimeError):
    """The signing key file is missing, unreadable or not an Ed25519 key."""


class SignedPdfError(ValueError):
    """A document cannot be signed (it is not a PDF this module can append to)."""


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no insignificant spaces, UTF-8, no NaN/Infinity."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- keys


public_key_path_for = keyfiles.public_key_path_for


def load_signing_key(path: Path, *, create_if_missing: bool) -> Ed25519PrivateKey:
    """Load the server's private key (PKCS#8 PEM), generating it on first use in development.

    A generated key is written with mode 0600 (created exclusively, so two workers starting
    at once cannot overwrite each other's key) and its public key beside it as ``<name>.pub``.

    Raises:
        SigningKeyError: missing with ``create_if_missing=False``, unreadable or not Ed25519.
    """
    try:
        return keyfiles.load_ed25519(
            path, create_if_missing=create_if_missing, what="contract signing key"
        )
    except keyfiles.KeyFileError as exc:
        raise SigningKeyError(str(exc)) from exc


public_key_pem = keyfiles.public_key_pem


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key (or a PEM private key, whose public half is used).

    Raises:
        SigningKeyError: not an Ed25519 key in PEM.
    """
    try:
        return keyfiles.load_public_key(pem)
    except keyfiles.KeyFileError as exc:
        raise SigningKeyError(str(exc)) from exc


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 16 hex digits of sha256(raw key)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)[:16]


# ---------------------------------------------------------------------------- records


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times in a signing record must carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_record(
    *,
    order_id: str,
    contract_no: str,
    document: bytes,
    signature_image_sha256: str,
    otp_challenge_id: str,
    otp_proof: str,
    otp_verified_at: datetime,
    server_time: datetime,
    device_time: datetime | None,
    latitude: float | None,
    longitude: float | None,
    gps_accuracy_m: float | None,
    signer: str,
) -> dict[str, Any]:
    """The signing record of one contract, as plain JSON values.

    Numbers that are not integers are written as fixed-precision strings so that any
    language's canonical JSON encoder reproduces the signed bytes.
    """
    gps: dict[str, str] | None = None
    if latitude is not None and longitude is not None:
        gps = {"lat": f"{latitude:.7f}", "lon": f"{longitude:.7f}"}
        if gps_accuracy_m is not None:
            gps["accuracy_m"] = f"{gps_accuracy_m:.1f}"
    return {
        "version": RECORD_VERSION,
        "order_id": order_id,
        "contract_no": contract_no,
        "document_sha256": sha256_hex(document),
        "document_length": len(document),
        "signature_image_sha256": signature_image_sha256,
        "otp": {
            "challenge_id": otp_challenge_id,
            "proof": otp_proof,
            "verified_at": _utc_text(otp_verified_at),
        },
        "server_time": _utc_text(server_time),
        "device_time": _utc_text(device_time) if device_time is not None else None,
        "gps": gps,
        "signer": signer,
    }


def sign_record(record: dict[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """Sign the canonical JSON of ``record`` and return the envelope that carries both."""
    signature = private_key.sign(canonical_json(record))
    return {
        "algorithm": ALGORITHM,
        "key_id": key_id(private_key.public_key()),
        "record": record,
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def verify_envelope(envelope: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """Check an envelope's signature; return ``None`` when valid, else the reason (English)."""
    problem = envelope_problem(envelope, public_key)
    return None if problem is None else problem[0]


def envelope_problem(
    envelope: dict[str, Any], public_key: Ed25519PublicKey
) -> tuple[str, Message] | None:
    """Check an envelope's signature: ``None`` when valid, else the reason in English and as a
    message for people (``contract_check.<why>``)."""
    if envelope.get("algorithm") != ALGORITHM:
        algorithm = str(envelope.get("algorithm"))[:64]
        return (
            f"unsupported signature algorithm {envelope.get('algorithm')!r}",
            Message("contract_check.unsupported_algorithm", {"algorithm": algorithm}),
        )
    record = envelope.get("record")
    if not isinstance(record, dict):
        return "the envelope carries no record", Message("contract_check.no_record_in_envelope")
    if envelope.get("key_id") != key_id(public_key):
        return (
            f"signed with key {envelope.get('key_id')!r}, not with the given public key "
            f"{key_id(public_key)!r}",
            Message(
                "contract_check.other_key",
                {"key": str(envelope.get("key_id"))[:64], "expected": key_id(public_key)},
            ),
        )
    try:
        signature = base64.b64decode(str(envelope.get("signature", "")), validate=True)
        public_key.verify(signature, canonical_json(record))
    except (binascii.Error, InvalidSignature, ValueError):
        return (
            "the server signature does not match the signing record",
            Message("contract_check.signature_mismatch"),
        )
    return None


# ---------------------------------------------------------------------------- PDF embedding

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_TRAILER = re.compile(rb"trailer\s*<<(.*?)>>\s*startxref", re.DOTALL)
_REF = rb"\s+(\d+)\s+0\s+R"


def _trailer_entries(document: bytes) -> tuple[int, int, int | None, int, bytes | None]:
    """(root object, size, info object, previous xref offset, first ID) of the last trailer."""
    end = _STARTXREF.search(document[-1024:])
    trailers = list(_TRAILER.finditer(document))
    if end is None or not trailers:
        raise SignedPdfError("not a PDF with a classic cross-reference table and trailer")
    trailer = trailers[-1].group(1)
    root = re.search(rb"/Root" + _REF, trailer)
    size = re.search(rb"/Size\s+(\d+)", trailer)
    info = re.search(rb"/Info" + _REF, trailer)
    first_id = re.search(rb"/ID\s*\[\s*<([0-9a-fA-F]+)>", trailer)
    if root is None or size is None:
        raise SignedPdfError("the PDF trailer has no /Root or /Size")
    return (
        int(root.group(1)),
        int(size.group(1)),
        int(info.group(1)) if info else None,
        int(end.group(1)),
        first_id.group(1) if first_id else None,
    )


def _catalog_entries(document: bytes, root: int) -> bytes:
    """The inner text of the catalog dictionary, to repeat it in the updated catalog."""
    # Plain byte searches from the end: the last definition of the object wins, and a regex
    # over the whole file would cost more than everything else in verification together.
    header = b"%d 0 obj" % root
    at = len(document)
    while True:
        at = document.rfind(header, 0, at)
        if at < 0:
            raise SignedPdfError(f"the PDF catalog object {root} was not found")
        if at == 0 or document[at - 1 : at] in (b"\n", b"\r"):
            break
    end = document.find(b"endobj", at)
    opened = document.find(b"<<", at, end)
    closed = document.rfind(b">>", at, end)
    if end < 0 or opened < 0 or closed < opened:
        raise SignedPdfError(f"the PDF catalog object {root} is malformed")
    body = document[opened + 2 : closed]
    if b"/Names" in body or b"/AF" in body or b"<<" in body:
        # Merging name trees is not needed for the documents this service renders.
        raise SignedPdfError("the PDF catalog already has nested entries; cannot attach to it")
    return b" ".join(body.split())


def attach_envelope(document: bytes, envelope: dict[str, Any]) -> bytes:
    """Append the envelope to ``document`` as an incremental update (embedded JSON file).

    Deterministic: the same document and envelope always give the same bytes, which is what
    lets :func:`verify_signed_pdf` rebuild and compare the update.

    Raises:
        SignedPdfError: the document is not a PDF this function can update.
    """
    if not document.endswith(b"\n"):
        # The marker must start a line, and the document must stay byte-identical.
        raise SignedPdfError("the PDF does not end with a newline after %%EOF")
    payload = canonical_json(envelope)
    root, size, info, previous_xref, first_id = _trailer_entries(document)
    catalog = _catalog_entries(document, root)
    stream_no, filespec_no = size, size + 1

    parts: list[bytes] = []
    offsets: dict[int, int] = {}
    position = len(document)

    def emit(chunk: bytes, number: int | None = None) -> None:
        nonlocal position
        if number is not None:
            offsets[number] = position
        parts.append(chunk)
        position += len(chunk)

    emit(UPDATE_MARKER)
    emit(
        b"%d 0 obj\n<< /Type /EmbeddedFile /Subtype /application#2Fjson /Length %d "
        b"/Params << /Size %d /CheckSum <%s> >> >>\nstream\n"
        % (
            stream_no,
            len(payload),
            len(payload),
            hashlib.md5(payload, usedforsecurity=False).hexdigest().encode(),
        ),
        stream_no,
    )
    emit(payload + b"\nendstream\nendobj\n")
    name = ATTACHMENT_NAME.encode()
    emit(
        b"%d 0 obj\n<< /Type /Filespec /F (%s) /UF (%s) /AFRelationship /Data "
        b"/Desc (fieldops contract signing record, Ed25519) /EF << /F %d 0 R >> >>\nendobj\n"
        % (filespec_no, name, name, stream_no),
        filespec_no,
    )
    emit(
        b"%d 0 obj\n<< %s /Names << /EmbeddedFiles << /Names [(%s) %d 0 R] >> >> "
        b"/AF [%d 0 R] >>\nendobj\n" % (root, catalog, name, filespec_no, filespec_no),
        root,
    )
    xref_at = position
    lines = [b"xref\n0 1\n0000000000 65535 f \n"]
    for number in sorted(offsets):
        lines.append(b"%d 1\n%010d 00000 n \n" % (number, offsets[number]))
    new_id = sha256_hex(payload)[:32].encode()
    ids = b"/ID [<%s> <%s>] " % (first_id or new_id, new_id)
    info_ref = b"/Info %d 0 R " % info if info is not None else b""
    lines.append(
        b"trailer\n<< /Size %d /Root %d 0 R %s%s/Prev %d >>\nstartxref\n%d\n%%%%EOF\n"
        % (size + 2, root, info_ref, ids, previous_xref, xref_at)
    )
    emit(b"".join(lines))
    return document + b"".join(parts)


def sign_pdf(document: bytes, record: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """Sign ``record`` (which must describe ``document``) and attach it to the document.

    Raises:
        SignedPdfError: the record does not describe this document, or the PDF cannot be
            updated.
    """
    if record.get("document_sha256") != sha256_hex(document) or record.get(
        "document_length"
    ) != len(document):
        raise SignedPdfError("the signing record does not describe this document")
    return attach_envelope(document, sign_record(record, private_key))


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying a signed contract file.

    ``detail`` is in English (logs); ``message`` says the same for people
    (``contract_check.<why>`` in :mod:`field_api.messages`), rendered in their language.
    """

    valid: bool
    detail: str
    record: dict[str, Any] | None = None
    message: Message | None = None


class EnvelopeError(ValueError):
    """No readable signing record: the English reason, and the same as a message for people."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.message = Message(code)


def extract_envelope(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """Split a signed file into the signed document and its envelope.

    Raises:
        ValueError: no fieldops signing record can be found or parsed.
    """
    at = data.rfind(UPDATE_MARKER)
    if at < 0:
        raise EnvelopeError(
            "the file carries no fieldops signing record", "contract_check.no_record"
        )
    header = re.compile(rb"\d+ 0 obj\n<< /Type /EmbeddedFile [^\n]*?/Length (\d+) [^\n]*\nstream\n")
    found = header.match(data, at + len(UPDATE_MARKER))
    if found is None:
        raise EnvelopeError(
            "the signing record attachment is malformed", "contract_check.attachment_malformed"
        )
    length = int(found.group(1))
    if length > _MAX_ENVELOPE_BYTES:
        raise EnvelopeError(
            "the signing record attachment is implausibly large",
            "contract_check.attachment_too_large",
        )
    payload = data[found.end() : found.end() + length]
    try:
        envelope = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(
            f"the signing record is not valid JSON: {exc}", "contract_check.record_not_json"
        ) from exc
    if not isinstance(envelope, dict):
        raise EnvelopeError(
            "the signing record is not a JSON object", "contract_check.record_not_json"
        )
    return data[:at], envelope


def verify_signed_pdf(data: bytes, public_key: Ed25519PublicKey) -> Verification:
    """Verify a signed contract file with the public key alone; never raises on bad input."""
    try:
        document, envelope = extract_envelope(data)
    except EnvelopeError as exc:
        return Verification(False, str(exc), message=exc.message)
    problem = envelope_problem(envelope, public_key)
    if problem is not None:
        return Verification(False, problem[0], message=problem[1])
    record: dict[str, Any] = envelope["record"]
    if record.get("document_length") != len(document):
        return Verification(
            False, "the signed document's length does not match the record",
            message=Message("contract_check.length_differs"),
        )
    if record.get("document_sha256") != sha256_hex(document):
        return Verification(
            False, "the contract document was changed after signing",
            message=Message("contract_check.document_changed"),
        )
    try:
        expected = attach_envelope(document, envelope)
    except SignedPdfError as exc:
        return Verification(
            False, f"the signed document is not a valid contract PDF: {exc}",
            message=Message("contract_check.not_a_contract_pdf"),
        )
    if expected != data:
        return Verification(
            False, "the file was changed after signing (signature section)",
            message=Message("contract_check.file_changed"),
        )
    return Verification(
        True,
        f"valid: contract for order {record.get('order_id')} signed by "
        f"{record.get('signer')} at {record.get('server_time')} (key {envelope['key_id']})",
        record,
        Message(
            "contract_check.valid",
            {"order_id": record.get("order_id"), "signer": record.get("signer"),
             "signed_at": _people_time(record.get("server_time")), "key": envelope["key_id"]},
        ),
    )


def _people_time(value: Any) -> str:
    """A record's UTC time as people read it (China time); as written when it is not a time."""
    try:
        return china_minute(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return str(value)
