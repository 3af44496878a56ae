"""Request and response bodies of contracts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from field_api.contracts.models import Contract, ContractOtp, ContractStatus
from field_api.contracts.scheme_terms import term_in_english
from field_api.contracts.signing import Verification
from field_api.language import DEFAULT_LANG, Lang
from field_api.privacy import mask_id_number, mask_name, mask_phone


class ContractRead(BaseModel):
    """A contract as the terminal and planners see it (customer data masked)."""

    id: int
    order_id: int
    contract_no: str
    revision: int
    status: ContractStatus
    generated_at: datetime
    draft_sha256: str
    signed_at: datetime | None
    document_sha256: str | None
    file_sha256: str | None
    signature_image_sha256: str | None
    key_id: str | None
    customer: dict[str, str]
    scheme: dict[str, Any]
    pdf_url: str

    @classmethod
    def of(cls, contract: Contract, language: Lang = DEFAULT_LANG) -> ContractRead:
        """``scheme`` in the reader's language: the signed document is Chinese; an English
        reader gets the catalogue items and the supply point by their English names."""
        data = contract.data
        return cls(
            id=contract.id,
            order_id=contract.order_id,
            contract_no=contract.contract_no,
            revision=contract.revision,
            status=contract.status,
            generated_at=contract.generated_at,
            draft_sha256=contract.draft_sha256,
            signed_at=contract.signed_at,
            document_sha256=contract.document_sha256,
            file_sha256=contract.file_sha256,
            signature_image_sha256=contract.signature_image_sha256,
            key_id=contract.key_id,
            customer={
                "name": mask_name(data.get("customer_name")),
                "phone": mask_phone(data.get("customer_phone")),
                "id_number": mask_id_number(data.get("customer_id_number")),
            },
            scheme={
                k: _shown(k, data.get(k), language)
                for k in (
                    "category",
                    "capacity_kw",
                    "phases",
                    "supply_point",
                    "cable",
                    "breaker",
                    "meter",
                    "metering",
                    "kit_code",
                    "route_length_m",
                )
            },
            pdf_url=f"/work-orders/{contract.order_id}/contract/pdf",
        )


def _shown(key: str, value: Any, language: Lang) -> Any:
    if language == "en" and isinstance(value, str):
        return term_in_english(key, value)
    return value


class OtpRead(BaseModel):
    """A sent one-time code (never the code)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    sent_to: str
    created_at: datetime
    expires_at: datetime
    max_attempts: int

    @classmethod
    def of(cls, row: ContractOtp) -> OtpRead:
        return cls.model_validate(row)


class VerificationRead(BaseModel):
    """The outcome of verifying a contract file: ``message`` in the request's language (from
    ``code`` and ``params``, see ``field_api.messages``), ``detail`` the same in English."""

    valid: bool
    code: str | None = Field(default=None, description="Why, as a stable key.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="What the message needs, in no language."
    )
    message: str = Field(default="", description="The verdict in the request's language.")
    detail: str = Field(description="The verdict in English.")
    record: dict[str, Any] | None = None

    @classmethod
    def of(cls, result: Verification, language: str) -> VerificationRead:
        m = result.message
        return cls(
            valid=result.valid, code=m.code if m else None, params=dict(m.params) if m else {},
            message=m.render(language) if m else result.detail, detail=result.detail,
            record=result.record,
        )
