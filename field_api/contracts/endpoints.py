"""HTTP endpoints of contracts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from field_api.common.actors import Principal, Role
from field_api.contracts import service
from field_api.contracts.schemas import ContractRead, OtpRead, VerificationRead
from field_api.contracts.signing import public_key_pem
from field_api.deps import AppSettings, CurrentUser, DbSession, require_roles
from field_api.errors import error_body
from field_api.language import language_of
from field_api.types import IdPath, IsoAwareDatetime

router = APIRouter(tags=["contracts"])

FieldWork = Annotated[Principal, Depends(require_roles(Role.crew, Role.admin))]


@router.post("/work-orders/{order_id}/contract", status_code=status.HTTP_201_CREATED)
def generate_contract(
    request: Request, order_id: IdPath, session: DbSession, user: FieldWork, settings: AppSettings
) -> ContractRead:
    """Generate the contract from the order and its accepted scheme (again while unsigned)."""
    contract = service.generate(session, order_id, actor=user, settings=settings)
    return ContractRead.of(contract, language_of(request))


@router.get("/work-orders/{order_id}/contract")
def get_contract(
    request: Request, order_id: IdPath, session: DbSession, user: CurrentUser
) -> ContractRead:
    """Show the order's contract and its signing state (scheme items in the reader's
    language; the signed document itself is Chinese)."""
    return ContractRead.of(service.read(session, order_id, actor=user), language_of(request))


@router.get("/work-orders/{order_id}/contract/pdf", response_class=Response)
def get_contract_pdf(
    order_id: IdPath, session: DbSession, user: CurrentUser, settings: AppSettings
) -> Response:
    """Download the contract PDF: the signed file once signed, else the draft to read."""
    contract, data = service.document_of(session, order_id, actor=user, settings=settings)
    digest = contract.file_sha256 or contract.draft_sha256
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{contract.contract_no}.pdf"',
            "ETag": f'"{digest}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/work-orders/{order_id}/contract/otp", status_code=status.HTTP_201_CREATED)
def request_contract_code(
    order_id: IdPath,
    session: DbSession,
    user: FieldWork,
    settings: AppSettings,
) -> OtpRead:
    """Queue a one-time signing code for the customer's phone (earlier codes stop working).

    The text message is queued with this answer and sent by the job workers, which retry a
    failing SMS gateway with backoff; a message that finally fails lands in the dead-letter
    list (``GET /jobs/dead``) and the crew requests a new code.
    """
    row = service.request_code(session, order_id, actor=user, settings=settings)
    return OtpRead.of(row)


@router.post("/work-orders/{order_id}/contract/signature", response_model=ContractRead)
def sign_contract(
    request: Request,
    order_id: IdPath,
    session: DbSession,
    user: FieldWork,
    settings: AppSettings,
    signature: Annotated[
        UploadFile, File(description="The customer's drawn signature (PNG/JPEG).")
    ],
    code: Annotated[str, Form(min_length=4, max_length=12, pattern=r"^\s*\d+\s*$")],
    device_time: Annotated[IsoAwareDatetime | None, Form()] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Form(ge=-180, le=180)] = None,
    gps_accuracy_m: Annotated[float | None, Form(ge=0, le=100_000)] = None,
) -> ContractRead | JSONResponse:
    """Sign the contract with the customer's signature and one-time code."""
    image = signature.file.read(service.MAX_SIGNATURE_BYTES + 1)
    result = service.sign(
        session,
        order_id,
        actor=user,
        settings=settings,
        code=code,
        signature_image=image,
        device_time=device_time,
        lat=lat,
        lon=lon,
        gps_accuracy_m=gps_accuracy_m,
    )
    if isinstance(result, service.OtpRejected):
        # Returned, not raised: raising would roll back the counted attempt.
        return JSONResponse(
            {
                **error_body(
                    "ValidationFailed",
                    f"contract.otp_{result.outcome.value}",  # _wrong, _expired, _exhausted, _used
                    result.detail,
                    {"attempts_left": result.attempts_left},
                    language=language_of(request),
                ),
                "attempts_left": result.attempts_left,
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return ContractRead.of(result, language_of(request))


@router.post("/contracts/verify")
def verify_contract(
    request: Request,
    settings: AppSettings,
    file: Annotated[UploadFile, File(description="A signed contract PDF.")],
) -> VerificationRead:
    """Verify a signed contract PDF (public: no token needed); ``message`` says why in the
    request's language."""
    data = file.file.read(service.MAX_VERIFY_BYTES + 1)
    result = service.verify_file(data, settings=settings)
    return VerificationRead.of(result, language_of(request))


@router.get("/contracts/public-key", response_class=Response)
def contract_public_key(settings: AppSettings) -> Response:
    """The server's Ed25519 public key (PEM) that verifies every contract."""
    return Response(
        public_key_pem(service.public_key(settings)), media_type="application/x-pem-file"
    )
