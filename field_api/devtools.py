"""Development-only routes: the SMS outbox a newcomer reads the one-time code from.

``create_app`` calls :func:`install`: outside production it mounts ``GET /dev/sms``, which reads
the SMS outbox table (:func:`field_api.sms.service.dev_outbox`): the newest 50 messages sent
with the development ``log`` gateway, whichever process sent them (the API's worker thread or
``fieldops worker``), decrypted for display with the phone masked. In production the route
does not exist (404); the http gateway wipes every message once sent anyway. Any signed-in
user may read the outbox on a development or test server (tests/access_matrix.yaml): it holds
demo customers' messages, and it is the one place their codes and tracking links are shown in
full — logs redact them in every environment.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from field_api.config import Settings
from field_api.deps import AppSettings, CurrentUser, DbSession
from field_api.paging import Page
from field_api.sms import service as sms

router = APIRouter(prefix="/dev", tags=["development"])


class KeptSmsRead(BaseModel):
    """One message the service sent, as kept by the development outbox."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sent_at": "2026-11-27T02:04:31Z",
                    "phone": "*******8000",
                    "text": "【供电服务】合同 HT-2026-000123 签署验证码 482913，5分钟内有效。",
                }
            ]
        }
    )

    sent_at: AwareDatetime
    phone: str = Field(description="The customer's number, masked to its last four digits.")
    text: str = Field(description="The whole message: codes and links are not redacted here.")

    @classmethod
    def of(cls, kept: sms.SentSms) -> KeptSmsRead:
        return cls(sent_at=kept.sent_at, phone=kept.phone, text=kept.text)


@router.get("/sms")
def sms_outbox(
    user: CurrentUser, page: Page, session: DbSession, settings: AppSettings
) -> list[KeptSmsRead]:
    """Development only: the SMS the service sent, newest first (phone masked, text whole).

    Not mounted in production (404 there).
    """
    return page.apply([KeptSmsRead.of(kept) for kept in sms.dev_outbox(session, settings)])


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the development routes, unless ``settings`` is production."""
    if not settings.is_production:
        app.include_router(router)
