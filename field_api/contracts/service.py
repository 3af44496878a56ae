"""Use cases of contracts: generate from the order and its scheme, send the one-time code,
sign (customer's drawn signature + code → server-signed PDF), read and verify."""

from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.storage import remove_on_rollback, store_of
from field_api.config import Settings
from field_api.contracts import signing
from field_api.contracts.models import Contract, ContractOtp, ContractStatus
from field_api.contracts.otp import OneTimeCode, OtpOutcome
from field_api.contracts.pdf import (
    CjkFontMissingError,
    ContractData,
    SignatureMark,
    render_contract_pdf,
)
from field_api.contracts.scheme_terms import SchemeTerms, scheme_terms_for
from field_api.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMedia,
    ValidationFailed,
)
from field_api.media import service as media
from field_api.media.rules import MediaKind
from field_api.privacy import mask_name, mask_phone
from field_api.sms import service as sms
from field_api.sms.rules import SmsTemplate
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage

logger = logging.getLogger(__name__)

# Contracts are read and dated in China; the zone has had no DST since 1991.
CHINA = clock.CHINA_TZ  # the one definition (field_api.common.clock)
MAX_SIGNATURE_BYTES = 1024 * 1024
#: Namespace of the media client ids of contract signatures (uuid5 of the contract number).
SIGNATURE_IDS = uuid.UUID("6f1c1a52-5c1e-4d7e-9f57-2f0c4b1f6a10")
MAX_VERIFY_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class OtpRejected:
    """A wrong, expired or exhausted code: returned (not raised) so the attempt is kept."""

    outcome: OtpOutcome
    attempts_left: int

    @property
    def detail(self) -> str:
        """What the terminal shows the crew."""
        if self.outcome is OtpOutcome.wrong:
            return f"wrong one-time code; {self.attempts_left} attempt(s) left"
        if self.outcome is OtpOutcome.expired:
            return "the one-time code has expired; request a new one"
        if self.outcome is OtpOutcome.exhausted:
            return "too many wrong attempts; request a new one-time code"
        return "the one-time code was already used; request a new one"


# ---------------------------------------------------------------------------- keys


@lru_cache(maxsize=8)
def _signing_key(path: Path, create: bool) -> Ed25519PrivateKey:
    return signing.load_signing_key(path, create_if_missing=create)


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The server's contract signing key; generated on first use outside production."""
    try:
        return _signing_key(settings.signing_key_path.resolve(), not settings.is_production)
    except signing.SigningKeyError as exc:
        logger.error("contract signing key unavailable: %s", exc)
        raise ServiceUnavailable(
            "contract signing is not configured on this server",
            code="contract.signing_not_configured",
        ) from exc


def public_key(settings: Settings) -> Ed25519PublicKey:
    """The public half of the signing key: what anyone verifies contracts with."""
    return signing_key(settings).public_key()


# ---------------------------------------------------------------------------- reads


def get(session: Session, order_id: int) -> Contract | None:
    """The order's contract, if one was generated."""
    return session.execute(
        select(Contract).where(Contract.order_id == order_id)
    ).scalar_one_or_none()


def get_or_raise(session: Session, order_id: int) -> Contract:
    """The order's contract; 404 when none was generated."""
    contract = get(session, order_id)
    if contract is None:
        raise NotFound(
            f"work order {order_id} has no contract yet",
            code="contract.not_found",
            params={"order_id": order_id},
        )
    return contract


CONTRACT_READERS = ["admin", "crew", "planner", "service"]  # (a crew: its own orders only)


def read(session: Session, order_id: int, *, actor: Principal) -> Contract:
    """The contract as the API shows it: :func:`get_for_actor` decides who may read it."""
    return get_for_actor(session, order_id, actor)


def get_for_actor(session: Session, order_id: int, actor: Principal) -> Contract:
    """The contract of an order the actor may read (never a storekeeper's business).

    The contract carries the customer's identity number and signature: a storekeeper, who reads
    orders to pick their kits, is refused (403) like any role outside the order's work.
    """
    if actor.role == Role.storekeeper:
        raise Forbidden(
            f"role {actor.role.value} may not read contracts",
            code="auth.role_forbidden",
            params={"role": actor.role.value, "allowed": CONTRACT_READERS},
        )
    orders.get_for_actor(session, order_id, actor, write=False)
    return get_or_raise(session, order_id)


def is_signed(session: Session, order_id: int) -> bool:
    """Whether the order carries a signed contract (the one-visit completion reads the contract
    once, through :func:`get`, in ``visits.evidence.snapshot``)."""
    contract = get(session, order_id)
    return contract is not None and contract.status == ContractStatus.signed


def document_of(
    session: Session, order_id: int, *, actor: Principal, settings: Settings
) -> tuple[Contract, bytes]:
    """The contract file: the signed PDF once signed, else the draft rendered for reading."""
    contract = get_for_actor(session, order_id, actor)
    if contract.status == ContractStatus.signed and contract.file_sha256:
        try:
            return contract, store_of(settings).read_verified(contract.file_sha256)
        except OSError as exc:
            logger.error("signed contract %s unreadable: %s", contract.contract_no, exc)
            raise ServiceUnavailable(
                "the signed contract file is unavailable",
                code="contract.document_unavailable",
            ) from exc
    return contract, _render(ContractData.model_validate(contract.data), settings)


# ---------------------------------------------------------------------------- generate


def _render(
    data: ContractData, settings: Settings, signature: SignatureMark | None = None
) -> bytes:
    try:
        return render_contract_pdf(
            data, font_path=settings.contracts.font_path, signature=signature
        )
    except CjkFontMissingError as exc:
        logger.error("contract font missing: %s", exc)
        raise ServiceUnavailable(str(exc), code="contract.font_missing") from exc


def contract_data(
    order: WorkOrder,
    terms: SchemeTerms,
    *,
    contract_no: str,
    generated_at: datetime,
    supplier_name: str,
    district_name: str | None,
) -> ContractData:
    """The values printed on the contract, from the order and its accepted scheme."""
    return ContractData(
        contract_no=contract_no,
        order_id=str(order.id),
        generated_at=generated_at.astimezone(CHINA),
        supplier_name=supplier_name,
        customer_name=order.customer_name,
        customer_id_number=order.customer_id_number,
        customer_phone=order.customer_phone,
        address=order.address,
        district=district_name,
        category=order.category.value,
        capacity_kw=Decimal(str(order.capacity_kw)).quantize(Decimal("0.01")),
        phases=1 if order.phases == 1 else 3,
        supply_point=terms.supply_point,
        cable=terms.cable,
        breaker=terms.breaker,
        meter=terms.meter,
        metering=terms.metering,
        kit_code=terms.kit_code,
        route_length_m=Decimal(str(terms.route_length_m)).quantize(Decimal("0.1")),
        terms=tuple(terms.terms),
    )


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    # Two generations differ only by their time and number when nothing else changed.
    return {k: v for k, v in data.items() if k not in ("generated_at", "contract_no")}


def generate(session: Session, order_id: int, *, actor: Principal, settings: Settings) -> Contract:
    """Generate (or regenerate while unsigned) the contract from the order and its scheme."""
    order = orders.get_for_actor(session, order_id, actor, write=True)
    existing = get(session, order_id)
    if existing is not None and existing.status == ContractStatus.signed:
        raise Conflict(
            f"the contract {existing.contract_no} of order {order_id} is already signed",
            code="contract.already_signed",
            params={"contract_no": existing.contract_no},
        )
    if order.stage != Stage.scheme_answered:
        raise InvalidTransition(
            f"a contract is generated once the supply scheme is answered; order {order_id} is "
            f"{order.stage.value}",
            code="contract.wrong_stage",
            params={"order_id": order_id, "stage": order.stage.value},
        )
    terms = scheme_terms_for(session, order)
    now = clock.now()
    revision = existing.revision + 1 if existing is not None else 1
    contract_no = f"HT{now.astimezone(CHINA):%Y%m%d}-{order.id:06d}-{revision}"
    from field_api.auth.service import get_district_or_raise

    district = get_district_or_raise(session, order.district_id)
    data = contract_data(
        order,
        terms,
        contract_no=contract_no,
        generated_at=now,
        supplier_name=settings.contracts.supplier_name,
        district_name=district.name,
    )
    snapshot = data.model_dump(mode="json")
    if existing is not None and _comparable(existing.data) == _comparable(snapshot):
        return existing  # nothing changed: the customer keeps reading the same document
    document = _render(data, settings)
    if existing is None:
        contract = Contract(order_id=order.id, contract_no=contract_no, revision=revision)
        session.add(contract)
    else:
        contract = existing
        contract.contract_no = contract_no
        contract.revision = revision
        _supersede_codes(session, contract.id)
    contract.status = ContractStatus.draft
    contract.data = snapshot
    contract.draft_sha256 = signing.sha256_hex(document)
    contract.generated_at = now
    contract.generated_by = actor.user_id
    audit.record(session, actor=actor, action="contract.generate", entity=contract)
    return contract


# ---------------------------------------------------------------------------- one-time code


def _active_code(session: Session, contract_id: int) -> ContractOtp | None:
    return session.execute(
        select(ContractOtp)
        .where(ContractOtp.contract_id == contract_id, ContractOtp.superseded.is_(False))
        .order_by(ContractOtp.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _supersede_codes(session: Session, contract_id: int) -> None:
    for row in session.execute(
        select(ContractOtp).where(
            ContractOtp.contract_id == contract_id, ContractOtp.superseded.is_(False)
        )
    ).scalars():
        row.superseded = True


def request_code(
    session: Session, order_id: int, *, actor: Principal, settings: Settings
) -> ContractOtp:
    """Queue a new one-time code for the customer's phone (earlier codes stop working).

    The message goes to the SMS outbox in this transaction (:func:`field_api.sms.service.
    enqueue_sms`): the job workers send it, retrying a failing gateway with backoff, so the
    answer says the code is on its way, not that the phone got it.
    """
    order = orders.get_for_actor(session, order_id, actor, write=True)
    contract = get_or_raise(session, order_id)
    if contract.status == ContractStatus.signed:
        raise Conflict(
            f"the contract {contract.contract_no} is already signed",
            code="contract.already_signed",
            params={"contract_no": contract.contract_no},
        )
    opts = settings.contracts
    now = clock.now()
    latest = _active_code(session, contract.id)
    if latest is not None and now - latest.created_at < opts.otp_resend_interval:
        wait_s = int((opts.otp_resend_interval - (now - latest.created_at)).total_seconds()) + 1
        raise Conflict(
            f"a code was sent moments ago; request another in {wait_s} s",
            code="contract.otp_too_soon",
            params={"wait_s": wait_s},
        )
    sent_today = session.execute(
        select(func.count(ContractOtp.id)).where(
            ContractOtp.contract_id == contract.id,
            ContractOtp.created_at >= now - timedelta(hours=24),
        )
    ).scalar_one()
    if sent_today >= opts.otp_max_per_day:
        raise Conflict(
            f"{sent_today} codes were sent for this contract in the last 24 h; no more today",
            code="contract.otp_daily_limit",
            params={"sent": sent_today},
        )
    _supersede_codes(session, contract.id)
    state, code = OneTimeCode.issue(
        now=now,
        ttl=opts.otp_ttl,
        max_attempts=opts.otp_max_attempts,
        pepper=settings.token_pepper,
    )
    row = ContractOtp(
        contract_id=contract.id,
        salt=state.salt,
        code_hash=state.code_hash,
        sent_to=mask_phone(order.customer_phone),
        created_at=now,
        expires_at=state.expires_at,
        max_attempts=state.max_attempts,
        attempts=0,
    )
    session.add(row)
    audit.record(session, actor=actor, action="contract_otp.create", entity=row)
    minutes = max(int(opts.otp_ttl.total_seconds() // 60), 1)
    sms.enqueue_sms(
        session,
        order.customer_phone,
        SmsTemplate.otp,
        {"contract_no": contract.contract_no, "code": code, "minutes": str(minutes)},
        settings=settings,
    )
    return row


# ---------------------------------------------------------------------------- sign


def _checked_signature_image(raw: bytes) -> bytes:
    if not raw:
        raise ValidationFailed("the signature image is empty", code="contract.signature_empty")
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise PayloadTooLarge(
            f"the signature image exceeds {MAX_SIGNATURE_BYTES} bytes",
            code="contract.signature_too_large",
            params={"limit_bytes": MAX_SIGNATURE_BYTES},
        )
    if not (raw.startswith(b"\x89PNG\r\n\x1a\n") or raw.startswith(b"\xff\xd8\xff")):
        raise UnsupportedMedia(
            "the signature image must be a PNG or JPEG",
            code="contract.signature_type",
        )
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationFailed(
            f"the signature image cannot be decoded: {exc}",
            code="contract.signature_unreadable",
        ) from exc
    return raw


def sign(
    session: Session,
    order_id: int,
    *,
    actor: Principal,
    settings: Settings,
    code: str,
    signature_image: bytes,
    device_time: datetime | None = None,
    lat: float | None = None,
    lon: float | None = None,
    gps_accuracy_m: float | None = None,
) -> Contract | OtpRejected:
    """Sign the contract with the customer's drawn signature and one-time code.

    Renders the final document with the signature, builds and signs the record, stores the
    file, and moves the order to ``contract_signed``. A retry with the same signature after
    success returns the signed contract unchanged.
    """
    order = orders.get_for_actor(session, order_id, actor, write=True)
    contract = get_or_raise(session, order_id)
    image = _checked_signature_image(signature_image)
    image_sha = signing.sha256_hex(image)
    if _already_signed(order, contract, image_sha):
        return contract
    now = clock.now()
    row = _attempt_code(session, contract, code, actor=actor, settings=settings, now=now)
    if isinstance(row, OtpRejected):
        return row
    place = _SignedPlace(device_time=device_time, lat=lat, lon=lon, gps_accuracy_m=gps_accuracy_m)
    signed, document_sha, key = _signed_file(
        order, contract, row, image, settings=settings, now=now, place=place
    )
    store = store_of(settings)
    blob = store.put_bytes(signed)
    remove_on_rollback(session, store, blob)
    file_sha = blob.sha256
    contract.status = ContractStatus.signed
    contract.signed_at = now
    contract.signed_by = actor.user_id
    contract.document_sha256 = document_sha
    contract.file_sha256 = file_sha
    contract.file_size = len(signed)
    contract.signature_image_sha256 = image_sha
    contract.key_id = signing.key_id(key.public_key())
    contract.envelope = signing.extract_envelope(signed)[1]
    audit.record(session, actor=actor, action="contract.sign", entity=contract)
    orders.transition(
        session,
        order,
        Stage.contract_signed,
        actor=actor,
        device_time=device_time,
        device_lat=lat,
        device_lon=lon,
        data={"contract_no": contract.contract_no, "file_sha256": file_sha},
    )
    # The drawn signature is also evidence of the order, listed with its photos.
    media.record_generated(
        session,
        order=order,
        kind=MediaKind.signature,
        data=image,
        client_id=str(uuid.uuid5(SIGNATURE_IDS, contract.contract_no)),
        actor=actor,
        settings=settings,
    )
    return contract


@dataclass(frozen=True)
class _SignedPlace:
    """Where and when (by the terminal) the customer signed."""

    device_time: datetime | None
    lat: float | None
    lon: float | None
    gps_accuracy_m: float | None


def _already_signed(order: WorkOrder, contract: Contract, image_sha: str) -> bool:
    """True for a retry of a signature already made with this image; 409 for another image
    on a signed contract, and 409 when the order is not waiting for its contract."""
    if contract.status == ContractStatus.signed:
        if contract.signature_image_sha256 == image_sha:
            return True
        raise Conflict(
            f"the contract {contract.contract_no} is already signed",
            code="contract.already_signed",
            params={"contract_no": contract.contract_no},
        )
    if order.stage != Stage.scheme_answered:
        raise InvalidTransition(
            f"order {order.id} is {order.stage.value}; a contract is signed after the scheme",
            code="contract.wrong_stage",
            params={"order_id": order.id, "stage": order.stage.value},
        )
    return False


def _attempt_code(
    session: Session,
    contract: Contract,
    code: str,
    *,
    actor: Principal,
    settings: Settings,
    now: datetime,
) -> ContractOtp | OtpRejected:
    """Count one attempt of the one-time code (audited): its row once accepted, else why not."""
    row = _active_code(session, contract.id)
    if row is None:
        raise ValidationFailed(
            "no one-time code was sent for this contract; request one first",
            code="contract.otp_not_sent",
        )
    state = OneTimeCode(
        salt=row.salt,
        code_hash=row.code_hash,
        expires_at=row.expires_at,
        max_attempts=row.max_attempts,
        attempts=row.attempts,
        accepted_at=row.accepted_at,
    )
    outcome = state.attempt(code, now=now, pepper=settings.token_pepper)
    row.attempts = state.attempts
    row.accepted_at = state.accepted_at
    audit.record(session, actor=actor, action=f"contract_otp.{outcome.value}", entity=row)
    if outcome is not OtpOutcome.accepted:
        return OtpRejected(outcome, state.attempts_left)
    return row


def _signed_file(
    order: WorkOrder,
    contract: Contract,
    otp: ContractOtp,
    image: bytes,
    *,
    settings: Settings,
    now: datetime,
    place: _SignedPlace,
) -> tuple[bytes, str, Ed25519PrivateKey]:
    """The final document with the signature, its signed record embedded: ``(file bytes,
    the document's sha256, the signing key)``."""
    data = ContractData.model_validate(contract.data)
    try:
        document = _render(
            data, settings, SignatureMark(image=image, signed_at=now.astimezone(CHINA))
        )
    except ValueError as exc:
        raise ValidationFailed(
            str(exc),
            code="contract.render_failed",
            params={"reason": str(exc)},
        ) from exc
    record = signing.build_record(
        order_id=str(order.id),
        contract_no=contract.contract_no,
        document=document,
        signature_image_sha256=signing.sha256_hex(image),
        otp_challenge_id=str(otp.id),
        otp_proof=otp.code_hash,
        otp_verified_at=now,
        server_time=now,
        device_time=place.device_time,
        latitude=place.lat,
        longitude=place.lon,
        gps_accuracy_m=place.gps_accuracy_m,
        signer=mask_name(order.customer_name),
    )
    key = signing_key(settings)
    return signing.sign_pdf(document, record, key), record["document_sha256"], key


# ---------------------------------------------------------------------------- verify


def verify_file(data: bytes, *, settings: Settings) -> signing.Verification:
    """Verify an uploaded contract file against this server's public key."""
    if len(data) > MAX_VERIFY_BYTES:
        raise PayloadTooLarge(
            f"a contract file is at most {MAX_VERIFY_BYTES} bytes",
            code="contract.file_too_large",
            params={"limit_bytes": MAX_VERIFY_BYTES},
        )
    return signing.verify_signed_pdf(data, public_key(settings))
