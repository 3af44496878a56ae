"""Request and response bodies of the auth slice."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from field_api.common.actors import Role
from field_api.types import Text


class DistrictCreate(BaseModel):
    code: Text = Field(min_length=1, max_length=32)
    name: Text = Field(min_length=1, max_length=200)
    lv_ceiling_kw: float = Field(default=160.0, gt=0, le=200)


class DistrictRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name: str
    lv_ceiling_kw: float


class CrewCreate(BaseModel):
    code: Text = Field(min_length=1, max_length=32)
    name: Text = Field(min_length=1, max_length=200)
    district_code: Text = Field(min_length=1, max_length=32)
    handles_repairs: bool = False


class CrewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name: str
    district_id: int
    handles_repairs: bool


class UserCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    role: Role
    crew_code: Text | None = Field(default=None, min_length=1, max_length=32)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    role: Role
    crew_id: int | None
    active: bool


class UserCreated(BaseModel):
    user: UserRead
    token: str = Field(description="Shown once; only its hash is stored.")


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class MeRead(BaseModel):
    user_id: int
    name: str
    role: Role
    crew_id: int | None
    district_id: int | None
