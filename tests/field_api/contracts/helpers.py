"""Shared values for the contract tests (plain functions, no database)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from PIL import Image, ImageDraw

from field_api.contracts.pdf import ContractData

CHINA = timezone(timedelta(hours=8))


def make_contract_data(**overrides: object) -> ContractData:
    """A residential single-phase R1 contract; override any field."""
    values: dict[str, object] = {
        "contract_no": "HT-2026-000123",
        "order_id": "WO-2026-0042",
        "generated_at": datetime(2026, 11, 27, 10, 0, tzinfo=CHINA),
        "supplier_name": "国网示例市供电公司",
        "customer_name": "张三丰",
        "customer_id_number": "110101199001011234",
        "customer_phone": "13812345678",
        "address": "示例市城南区幸福路8号",
        "district": "城南",
        "category": "residential",
        "capacity_kw": Decimal("8"),
        "phases": 1,
        "supply_point": "城南3号配变 0.4kV 出线 #12 杆",
        "cable": "BV Cu 2×16 mm²",
        "breaker": "2P 63 A",
        "meter": "单相智能电能表 5(60)A",
        "metering": "direct",
        "kit_code": "R1",
        "route_length_m": Decimal("35"),
    }
    values.update(overrides)
    return ContractData.model_validate(values)


def signature_png() -> bytes:
    """A small drawn signature with a transparent background, as terminals send it."""
    image = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(10, 80), (120, 15), (290, 90)], fill=(0, 0, 0, 255), width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
