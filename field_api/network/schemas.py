"""Response bodies of the network slice."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ImportReportRead(BaseModel):
    """What a network import did (or would do, for a dry run)."""

    file_format: str
    transformers_created: int
    transformers_updated: int
    lines_created: int
    lines_updated: int
    dry_run: bool
    import_id: int | None


class TransformerRead(BaseModel):
    """A transformer with its capacity position in kVA."""

    code: str
    name: str
    lon: float
    lat: float
    rated_kva: float
    base_load_kva: float
    load_measured_at: datetime
    energised_kva: float
    committed_kva: float
    spare_kva: float
    available_kva: float
    distance_m: float | None = None
