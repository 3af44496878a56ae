"""Request and response bodies of contracts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from field_api.contracts.models import Contract, ContractOtp, ContractStatus
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
    def of(cls, contract: Contract) -> ContractRead:
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
                k: data.get(k)
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
    """The outcome of verifying a contract file."""

    valid: bool
    detail: str
    record: dict[str, Any] | None = None
