"""The stage machine as pure functions."""

from __future__ import annotations

import itertools

from field_api.common.actors import Role
from field_api.work_orders.rules import (
    FLOW,
    Stage,
    allowed_targets,
    capacity_problem,
    roles_for_target,
    transition_problem,
)


def test_happy_path_walks_the_whole_flow() -> None:
    for current, following in itertools.pairwise(FLOW):
        assert transition_problem(current, following) is None


def test_skipping_a_stage_names_the_allowed_ones() -> None:
    problem = transition_problem(Stage.surveyed, Stage.installed)
    assert problem == (
        "cannot move from surveyed to installed; allowed: scheme_answered, whitelisted, cancelled"
    )


def test_final_stages_allow_nothing() -> None:
    assert allowed_targets(Stage.closed) == []
    assert allowed_targets(Stage.cancelled) == []
    assert "none (final stage)" in (transition_problem(Stage.closed, Stage.accepted) or "")


def test_whitelist_releases_only_to_where_it_was_parked() -> None:
    assert allowed_targets(Stage.whitelisted, parked_from=Stage.scheme_answered) == [
        Stage.scheme_answered,
        Stage.cancelled,
    ]
    assert transition_problem(Stage.whitelisted, Stage.surveyed, parked_from=Stage.scheme_answered)


def test_no_whitelisting_after_contract_and_no_cancel_after_energising() -> None:
    assert Stage.whitelisted not in allowed_targets(Stage.contract_signed)
    assert Stage.cancelled not in allowed_targets(Stage.energised)


def test_roles() -> None:
    assert Role.crew in roles_for_target(Stage.installed)
    assert Role.planner not in roles_for_target(Stage.installed)
    assert roles_for_target(Stage.closed) == {Role.service, Role.admin}


def test_capacity_ceiling() -> None:
    assert capacity_problem(160, ceiling_kw=160) is None
    assert "exceeds" in (capacity_problem(160.5, ceiling_kw=160) or "")
