"""The contract's scheme items in the reader's language: the signed document is Chinese, an
English reader sees catalogue items and the supply point by their English names."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.contracts.scheme_terms import term_in_english
from tests.builders import auth
from tests.field_api.contracts.conftest import CrewAtScheme

_CJK = range(0x4E00, 0xA000)


def _has_cjk(text: str) -> bool:
    return any(ord(ch) in _CJK for ch in text)


def test_contract_scheme_in_english_and_in_chinese(
    client: TestClient, session: Session, at_scheme: CrewAtScheme
) -> None:
    session.commit()
    url = f"/work-orders/{at_scheme.order.id}/contract"
    made = client.post(url, headers=auth(at_scheme.token) | {"Accept-Language": "en"})
    assert made.status_code == 201, made.text
    english = made.json()["scheme"]
    chinese = client.get(url, headers=auth(at_scheme.token)).json()["scheme"]
    for key in ("supply_point", "cable", "breaker", "meter"):
        assert _has_cjk(chinese[key]), chinese[key]
        assert not _has_cjk(english[key]), english[key]
    assert "distribution transformer" in english["supply_point"]
    again = client.get(url, headers=auth(at_scheme.token) | {"Accept-Language": "en"}).json()
    assert again["scheme"] == english


def test_english_terms_by_the_catalogue_and_unknown_text_kept() -> None:
    assert term_in_english("cable", "YJV-0.6/1kV 2×10 铜芯交联电缆（CAB-CU-2X10）") == (
        "YJV 0.6/1 kV 2x10 mm2 Cu XLPE cable (CAB-CU-2X10)"
    )
    assert term_in_english("supply_point", "TX-DEMO-03 配电变压器（公用，800 kVA）低压出线") == (
        "TX-DEMO-03 distribution transformer (public, 800 kVA), LV outlet"
    )
    ct = term_in_english(
        "meter",
        "三相四线智能电能表 3×1.5(6)A 经互感器（MTR-3P-1.5-6），电流互感器 "
        "低压电流互感器 LMZ 100/5 0.2S（CT-100-5）",
    )
    assert ct == (
        "three-phase four-wire smart meter 3x1.5(6) A CT-connected (MTR-3P-1.5-6), "
        "current transformers LV current transformer 100/5 class 0.2S (CT-100-5)"
    )
    assert term_in_english("cable", "某电缆（NO-SUCH-CODE）") == "某电缆（NO-SUCH-CODE）"
    assert term_in_english("customer", "张三") == "张三"
