"""HTTP endpoints of users, crews, districts and tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from field_api.auth import service
from field_api.auth.schemas import (
    CrewCreate,
    CrewRead,
    DistrictCreate,
    DistrictRead,
    MeRead,
    TokenRead,
    UserCreate,
    UserCreated,
    UserRead,
)
from field_api.common.actors import Principal, Role
from field_api.deps import AppSettings, CurrentUser, DbSession, require_roles
from field_api.paging import Page
from field_api.types import IdPath

router = APIRouter(tags=["auth"])
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


@router.get("/me")
def me(user: CurrentUser) -> MeRead:
    """Who the bearer token belongs to."""
    return MeRead(
        user_id=user.user_id,
        name=user.name,
        role=user.role,
        crew_id=user.crew_id,
        district_id=user.district_id,
    )


@router.get("/districts")
def list_districts(page: Page, session: DbSession, _: CurrentUser) -> list[DistrictRead]:
    """All districts with their low-voltage ceilings."""
    return page.apply([DistrictRead.model_validate(d) for d in service.list_districts(session)])


@router.post("/admin/districts", status_code=status.HTTP_201_CREATED)
def create_district(body: DistrictCreate, session: DbSession, user: Admin) -> DistrictRead:
    """Create a district."""
    district = service.create_district(
        session, code=body.code, name=body.name, lv_ceiling_kw=body.lv_ceiling_kw, actor=user
    )
    return DistrictRead.model_validate(district)


@router.get("/crews")
def list_crews(page: Page, session: DbSession, _: CurrentUser) -> list[CrewRead]:
    """All crews."""
    return page.apply([CrewRead.model_validate(c) for c in service.list_crews(session)])


@router.post("/admin/crews", status_code=status.HTTP_201_CREATED)
def create_crew(body: CrewCreate, session: DbSession, user: Admin) -> CrewRead:
    """Create a crew in a district."""
    crew = service.create_crew(
        session,
        code=body.code,
        name=body.name,
        district_code=body.district_code,
        handles_repairs=body.handles_repairs,
        actor=user,
    )
    return CrewRead.model_validate(crew)


@router.get("/admin/users")
def list_users(page: Page, session: DbSession, _: Admin) -> list[UserRead]:
    """All users."""
    return page.apply([UserRead.model_validate(u) for u in service.list_users(session)])


@router.post("/admin/users", status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserCreate, session: DbSession, settings: AppSettings, user: Admin
) -> UserCreated:
    """Create a user; the response carries the new token once."""
    created, token = service.create_user(
        session,
        name=body.name,
        role=body.role,
        crew_code=body.crew_code,
        settings=settings,
        actor=user,
    )
    return UserCreated(user=UserRead.model_validate(created), token=token)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(token_id: IdPath, session: DbSession, user: Admin) -> TokenRead:
    """Revoke a token; it stops working at once."""
    return TokenRead.model_validate(service.revoke_token(session, token_id=token_id, actor=user))
