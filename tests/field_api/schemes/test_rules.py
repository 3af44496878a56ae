"""The supply-scheme engine on plain values: docs/domain.md's worked example, rule by rule."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from pyproj import Geod

from field_api import messages
from field_api.schemes.rules import (
    CableOption,
    EngineSettings,
    LvLine,
    Network,
    SchemeAnswer,
    SchemeInputError,
    SchemeRequest,
    SupplyTransformer,
    cable_options,
    check_cable,
    design_scheme,
    load_current_a,
    settings_from,
    voltage_drop_pct,
)
from standard_kits import Catalogue, load_catalogue

GEOD = Geod(ellps="WGS84")
HOME = (120.15, 30.28)  # lon, lat of the customer in every test


def _at(distance_m: float, azimuth_deg: float = 90.0, start: tuple[float, float] = HOME) -> tuple[
    float, float
]:
    lon, lat, _ = GEOD.fwd(start[0], start[1], azimuth_deg, distance_m)
    return float(lon), float(lat)


def _transformer(tid: str, distance_m: float, *, rated: float = 630, load: float = 100,
                 azimuth: float = 90.0) -> SupplyTransformer:
    lon, lat = _at(distance_m, azimuth)
    return SupplyTransformer(id=tid, rated_kva=rated, load_kva=load, lon=lon, lat=lat)


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def straight(cat: Catalogue) -> EngineSettings:
    """The catalogue's settings with no detour, so routes equal the distances set up."""
    return dataclasses.replace(settings_from(cat), detour_factor=1.0)


def _request(kw: float, *, category: str = "business", phases: int = 3, **kw_args: object
             ) -> SchemeRequest:
    return SchemeRequest(category=category, phases=phases, capacity_kw=kw, lon=HOME[0],
                         lat=HOME[1], **kw_args)  # type: ignore[arg-type]


# --- docs/domain.md's worked example ---------------------------------------------------------------

DOMAIN_AL_240 = CableOption(code="CAB-AL-4X240", conductor="Al", cores=4, section_mm2=240,
                            ampacity_a=409, r_ohm_per_km=0.142, x_ohm_per_km=0.08)


def test_load_current_of_the_worked_example() -> None:
    current = load_current_a(160, phases=3, voltage_v=380, cos_phi=0.85)
    assert current == pytest.approx(286.0, abs=0.5)


def test_worked_example_drops_about_6_3_percent_and_is_refused_at_5() -> None:
    current = load_current_a(160, phases=3, voltage_v=380, cos_phi=0.85)
    drop = voltage_drop_pct(current_a=current, length_m=300, r_ohm_per_km=0.142,
                            x_ohm_per_km=0.08, cos_phi=0.85, phases=3, voltage_v=380)
    assert drop == pytest.approx(6.3, abs=0.1)
    check = check_cable(DOMAIN_AL_240, current_a=current, breaker_rating_a=400, length_m=300,
                        cos_phi=0.85, phases=3, voltage_v=380, budget_pct=5.0)
    assert not check.passed
    assert check.reason is not None and "exceeds the 5 % budget" in check.reason
    assert check.max_length_m == pytest.approx(300 * 5.0 / drop)


def test_engine_refuses_al_240_for_the_worked_example_and_proposes_what_passes(
    cat: Catalogue, straight: EngineSettings
) -> None:
    options = [DOMAIN_AL_240] + [
        o for o in cable_options(cat, phases=3, laying_method="E") if o.code != DOMAIN_AL_240.code
    ]
    network = Network([_transformer("T1", 300)])
    answer = design_scheme(_request(160, preferred_cable="CAB-AL-4X240"), network, cat,
                           settings=straight, cables=options)
    assert answer.scheme is not None
    first = answer.scheme.cables_considered[0]
    assert first.code == "CAB-AL-4X240" and not first.passed
    assert first.voltage_drop_pct == pytest.approx(6.3, abs=0.1)
    chosen = answer.scheme.cable
    assert chosen.passed and chosen.voltage_drop_pct <= 5.0
    assert chosen.ampacity_a >= answer.scheme.breaker_rating_a >= answer.load_current_a
    # the kit's Cu 4×185 drops 5.6 % on 300 m too, so the engine goes up to Cu 4×240
    assert chosen.code == "CAB-CU-4X240"
    assert answer.scheme.route_length_m == pytest.approx(300, abs=0.01)
    assert answer.scheme.terminal_voltage_v == pytest.approx(380 * (1 - chosen.voltage_drop_pct / 100))


# --- choosing the supply point ----------------------------------------------------------------


def test_nearest_transformer_with_spare_capacity_is_chosen(
    cat: Catalogue, straight: EngineSettings
) -> None:
    full = _transformer("NEAR-FULL", 50, rated=200, load=190)
    spare = _transformer("FAR-SPARE", 120, rated=400, load=100, azimuth=180)
    farther = _transformer("FARTHEST", 200, rated=630, load=0, azimuth=0)
    answer = design_scheme(_request(30), Network([farther, full, spare]), cat, settings=straight)
    assert answer.scheme is not None
    assert answer.scheme.transformer_id == "FAR-SPARE"
    assert answer.scheme.distance_m == pytest.approx(120, abs=0.01)
    assert [f.rule for f in answer.failures] == ["transformer_capacity"]
    assert answer.failures[0].transformer_id == "NEAR-FULL"
    assert answer.scheme.transformer_spare_kva_before == pytest.approx(300)
    assert answer.scheme.transformer_spare_kva_after == pytest.approx(300 - 30 / 0.85)


def test_route_is_straight_line_times_detour_factor(cat: Catalogue) -> None:
    settings = settings_from(cat)
    answer = design_scheme(_request(8, category="residential", phases=1),
                           Network([_transformer("T1", 40)]), cat)
    assert answer.scheme is not None
    assert answer.scheme.route_method == "straight_line"
    assert answer.scheme.detour_factor == settings.detour_factor == 1.3
    assert answer.scheme.route_length_m == pytest.approx(40 * 1.3, abs=0.01)


def test_route_follows_a_given_lv_line(cat: Catalogue, straight: EngineSettings) -> None:
    # the line runs 100 m east of the transformer then 100 m north; the customer is 10 m off its end
    tx = SupplyTransformer(id="T1", rated_kva=400, load_kva=0, lon=HOME[0], lat=HOME[1])
    corner = _at(100, 90, (tx.lon, tx.lat))
    end = _at(100, 0, corner)
    customer = _at(10, 90, end)
    line = LvLine(id="L1", transformer_id="T1", coords=((tx.lon, tx.lat), corner, end))
    request = dataclasses.replace(_request(5, category="residential", phases=1),
                                  lon=customer[0], lat=customer[1])
    answer = design_scheme(request, Network([tx], [line]), cat, settings=straight)
    assert answer.scheme is not None
    assert answer.scheme.route_method == "along_line" and answer.scheme.detour_factor is None
    assert answer.scheme.route_length_m == pytest.approx(210, abs=0.5)
    assert answer.scheme.distance_m == pytest.approx(math.hypot(110, 100), abs=0.5)


def test_no_transformer_in_reach_proposes_the_white_list(cat: Catalogue) -> None:
    answer = design_scheme(_request(20), Network([_transformer("T1", 5000)]), cat)
    assert not answer.accepted
    assert [f.rule for f in answer.failures] == ["no_transformer_in_reach"]
    assert answer.white_list is not None and answer.white_list.reason == "no_transformer_in_reach"


def test_no_spare_capacity_anywhere_proposes_the_white_list(cat: Catalogue) -> None:
    network = Network([_transformer("T1", 100, rated=100, load=95),
                       _transformer("T2", 150, rated=200, load=200, azimuth=0)])
    answer = design_scheme(_request(50), network, cat)
    assert answer.scheme is None
    assert {f.rule for f in answer.failures} == {"transformer_capacity"}
    assert {f.transformer_id for f in answer.failures} == {"T1", "T2"}
    assert answer.white_list is not None and "white list" in answer.white_list.detail


def test_route_too_long_for_any_cable_names_the_rule_and_proposes(
    cat: Catalogue, straight: EngineSettings
) -> None:
    answer = design_scheme(_request(160), Network([_transformer("T1", 390)]), cat,
                           settings=straight)
    assert answer.scheme is None
    assert [f.rule for f in answer.failures] == ["voltage_drop"]
    assert "over the 5 % budget" in answer.failures[0].detail
    assert answer.white_list is not None and answer.white_list.reason == "voltage_drop"
    assert any(p.startswith("shorten the route to") for p in answer.proposals)


def test_a_larger_budget_accepts_what_the_default_refuses(
    cat: Catalogue, straight: EngineSettings
) -> None:
    network = Network([_transformer("T1", 390)])
    looser = dataclasses.replace(straight, voltage_drop_budget_pct=7.0)
    assert design_scheme(_request(160), network, cat, settings=looser).accepted


# --- kit, metering, breaker and cable -----------------------------------------------------------


def test_residential_8kw_uses_kit_r1_as_designed(cat: Catalogue, straight: EngineSettings) -> None:
    answer = design_scheme(_request(8, category="residential", phases=1),
                           Network([_transformer("T1", 30)]), cat, settings=straight)
    scheme = answer.scheme
    assert scheme is not None and answer.kit_code == "R1"
    assert answer.cos_phi == 0.9
    assert answer.load_current_a == pytest.approx(8000 / (220 * 0.9))
    assert (scheme.breaker_code, scheme.cable.code, scheme.meter_code) == (
        "BRK-2P-63", "CAB-CU-2X10", "MTR-1P-5-60")
    assert scheme.metering == "direct" and scheme.ct_code is None
    assert answer.load_current_a <= scheme.breaker_rating_a <= scheme.cable.ampacity_a
    assert 198 <= scheme.terminal_voltage_v <= 235.4
    bom = {b.material_code: b for b in scheme.bill_of_materials}
    assert bom["CAB-CU-2X10"].quantity == math.ceil(30 * 1.05)
    assert bom["CON-CLIP"].quantity == 30
    assert bom["CON-SEAL"].quantity == 3


def test_breaker_and_cable_are_upsized_when_the_kit_parts_do_not_fit(
    cat: Catalogue, straight: EngineSettings
) -> None:
    # at cosφ 0.6, 50 kW draws 127 A: above B2's 125 A breaker and Cu 4×35's 158 A ampacity
    poor_pf = dataclasses.replace(straight, power_factor={"business": 0.6, "residential": 0.9})
    answer = design_scheme(_request(50), Network([_transformer("T1", 20)]), cat,
                           settings=poor_pf)
    scheme = answer.scheme
    assert scheme is not None and answer.kit_code == "B2"
    assert scheme.breaker_code == "BRK-4P-160"
    assert scheme.cable.code == "CAB-CU-4X50"
    assert scheme.cables_considered[0].code == "CAB-CU-4X35"
    assert "below the breaker rating 160 A" in (scheme.cables_considered[0].reason or "")
    assert scheme.ct_code == "CT-150-5" and scheme.ct_primary_a == 150
    codes = [b.material_code for b in scheme.bill_of_materials]
    assert "BRK-4P-160" in codes and "BRK-4P-125" not in codes and "CAB-CU-4X35" not in codes


def test_single_phase_above_the_direct_meter_limit_proposes_three_phase(cat: Catalogue) -> None:
    answer = design_scheme(_request(12, category="residential", phases=1),
                           Network([_transformer("T1", 30)]), cat)
    assert answer.scheme is None
    assert [f.rule for f in answer.failures] == ["direct_meter_limit"]
    assert "60 A" in answer.failures[0].detail
    assert answer.proposals == ("connect three-phase with kit B1",)
    assert answer.white_list is None


def test_beyond_the_low_voltage_kits_there_is_no_kit(cat: Catalogue) -> None:
    answer = design_scheme(_request(250), Network([_transformer("T1", 30)]), cat)
    assert [f.rule for f in answer.failures] == ["no_standard_kit"]
    assert "up to 200 kW" in answer.failures[0].detail
    assert "high-voltage" in answer.proposals[0]


def test_cable_in_the_ground_that_cannot_carry_the_breaker_current(cat: Catalogue) -> None:
    # 200 kW = 357 A on a 400 A breaker; in ducts (D1) the largest cable carries 365 A
    answer = design_scheme(_request(200, laying_method="D1"), Network([_transformer("T1", 20)]),
                           cat)
    assert answer.scheme is None
    assert [f.rule for f in answer.failures] == ["ampacity"]
    assert answer.white_list is None
    assert "parallel cables" in answer.proposals[0]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"category": "industrial"}, "unknown category"),
        ({"phases": 2}, "phases must be 1 or 3"),
        ({"capacity_kw": -5.0}, "capacity_kw must be a positive number"),
        ({"capacity_kw": math.nan}, "capacity_kw must be a positive number"),
        ({"lat": 95.0}, "out of range"),
        ({"preferred_cable": "CAB-CU-2X10"}, "not a 3-phase cable option"),
        ({"laying_method": "Z9"}, "unknown laying method"),
    ],
)
def test_bad_requests_raise_a_clear_error(
    cat: Catalogue, changes: dict[str, object], message: str
) -> None:
    request = dataclasses.replace(_request(20), **changes)  # type: ignore[arg-type]
    with pytest.raises(SchemeInputError, match=message):
        design_scheme(request, Network([_transformer("T1", 30)]), cat)


def test_bad_network_data_raises_a_clear_error() -> None:
    with pytest.raises(SchemeInputError, match="unique"):
        Network([_transformer("T1", 10), _transformer("T1", 20)])
    with pytest.raises(SchemeInputError, match="unknown transformer"):
        Network([_transformer("T1", 10)], [LvLine("L1", "T9", (HOME, _at(10)))])
    with pytest.raises(SchemeInputError, match="rated kVA"):
        Network([_transformer("T1", 10, rated=0)])


# --- the spatial index answers exactly like the scan ----------------------------------------------


def test_spatial_index_and_scan_give_the_same_candidates_and_schemes(cat: Catalogue) -> None:
    rng = random.Random(7)
    transformers = [
        _transformer(f"T{i}", rng.uniform(0, 3000), rated=rng.choice([100, 200, 400, 630]),
                     load=rng.uniform(0, 400), azimuth=rng.uniform(0, 360))
        for i in range(400)
    ]
    indexed, scanned = Network(transformers), Network(transformers, spatial_index=False)
    assert indexed.uses_spatial_index and not scanned.uses_spatial_index
    for _ in range(30):
        lon, lat = _at(rng.uniform(0, 3000), rng.uniform(0, 360))
        a = [(t.id, round(d, 6)) for t, d in indexed.within(lon, lat, 400)]
        b = [(t.id, round(d, 6)) for t, d in scanned.within(lon, lat, 400)]
        assert a == b
        request = SchemeRequest(category="business", phases=3, capacity_kw=rng.uniform(5, 150),
                                lon=lon, lat=lat)
        assert design_scheme(request, indexed, cat) == design_scheme(request, scanned, cat)


def test_distances_match_the_geodesic(cat: Catalogue) -> None:
    network = Network([_transformer("T1", 350, azimuth=33)])
    [(_, distance)] = network.within(HOME[0], HOME[1], 400)
    assert distance == pytest.approx(350, abs=0.05)


def test_order_categories_are_designed_as_their_kit_category(cat: Catalogue) -> None:
    answer = design_scheme(_request(50, category="small_micro_enterprise"),
                           Network([_transformer("T1", 30)]), cat)
    assert answer.accepted and answer.kit_code == "B2"
    assert answer.category == "business" and answer.cos_phi == 0.85


# --- texts for people -------------------------------------------------------------------------


def _refusals(cat: Catalogue, straight: EngineSettings) -> dict[str, SchemeAnswer]:
    return {
        "no_transformer_in_reach": design_scheme(
            _request(20), Network([_transformer("T1", 5000)]), cat
        ),
        "transformer_capacity": design_scheme(
            _request(50), Network([_transformer("T1", 100, rated=100, load=95)]), cat
        ),
        "voltage_drop": design_scheme(
            _request(160), Network([_transformer("T1", 390)]), cat, settings=straight
        ),
        "direct_meter_limit": design_scheme(
            _request(12, category="residential", phases=1), Network([_transformer("T1", 30)]),
            cat,
        ),
        "no_standard_kit": design_scheme(_request(250), Network([_transformer("T1", 30)]), cat),
        "ampacity": design_scheme(
            _request(200, laying_method="D1"), Network([_transformer("T1", 20)]), cat
        ),
    }


def test_every_refusal_carries_messages_whose_english_is_the_stored_text(
    cat: Catalogue, straight: EngineSettings
) -> None:
    for rule, answer in _refusals(cat, straight).items():
        assert [f.rule for f in answer.failures] == [rule]
        for failure in answer.failures:
            assert failure.code is not None and failure.code.startswith("scheme_failure.")
            assert messages.render(failure.code, failure.params, "en") == failure.detail
            chinese = messages.render(failure.code, failure.params, "zh-CN")
            assert chinese != failure.detail and "{" not in chinese
        assert len(answer.proposal_messages) == len(answer.proposals)
        for message, text in zip(answer.proposal_messages, answer.proposals, strict=True):
            assert message.english == text
            assert message.render("zh-CN") != text
        if answer.white_list is not None:
            assert answer.white_list.code == "scheme_white_list.grid_short"
            wl = answer.white_list
            assert messages.render(wl.code or "", wl.params, "en") == wl.detail
    proposals = {r: a.proposal_messages for r, a in _refusals(cat, straight).items()}
    assert [m.code for m in proposals["direct_meter_limit"]] == ["scheme_proposal.three_phase"]
    assert [m.code for m in proposals["ampacity"]] == ["scheme_proposal.parallel_cables"]
    assert [m.code for m in proposals["voltage_drop"]] == ["scheme_proposal.shorten_route"]
