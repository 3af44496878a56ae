"""JSON the browser pages need that no other slice serves: thin calls into their services."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from field_api.checklists import service as checklists
from field_api.deps import CurrentUser, DbSession
from field_api.types import IdPath

router = APIRouter()


class ChecklistCardView(BaseModel):
    """The card the order will be checked against, with the scheme figures its items cite."""

    order_id: int
    card: dict[str, Any]
    scheme_values: dict[str, float | None]


@router.get("/work-orders/{order_id}/checklist-card", tags=["checklists"])
def checklist_card(order_id: IdPath, session: DbSession, user: CurrentUser) -> ChecklistCardView:
    """The order's completion-check card: items, limits and phases the crew's measurements are
    judged against, with the supply-scheme figures the items cite."""
    card, context = checklists.card_for_actor(session, order_id, user)
    return ChecklistCardView(
        order_id=order_id,
        card=card.model_dump(mode="json"),
        scheme_values={
            "scheme_cable_section_mm2": context.scheme_cable_section_mm2,
            "scheme_breaker_rating_a": context.scheme_breaker_rating_a,
            "scheme_ct_primary_a": context.scheme_ct_primary_a,
            # Some limits depend on the transformer's size (earthing ≤ 10 Ω up to 100 kVA).
            "transformer_rated_kva": context.transformer_rated_kva,
        },
    )


# The path the crew app used before the card had a public one; kept for pages and scripts.
router.add_api_route(
    "/app/api/work-orders/{order_id}/checklist-card",
    checklist_card,
    methods=["GET"],
    tags=["web"],
    include_in_schema=False,
)
