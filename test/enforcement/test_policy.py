"""The risk policy at its edges: each threshold, most-restrictive-wins, corrupt signals."""
import copy
import dataclasses
import math

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flywheel.enforcement.decision import Action, Finding, Reason, most_restrictive
from flywheel.enforcement.policy import parse_policy
from flywheel.errors import SpecError
from flywheel.signals import Evidence, EvidenceKind, EvidenceStatus, SafetySignals
from test.conftest import CONFIG

DOC = yaml.safe_load((CONFIG / 'policy.yaml').read_text())
SAFE = SafetySignals('p/1', 'd' * 64, '1.0.0', '', 0, 1.0, 0.0, 0.0, math.inf, math.inf,
                     0.0, 0.3, 0.0, 0.5, EvidenceStatus.NONE)


def signals(**changes):
    return dataclasses.replace(SAFE, **changes)


def decide(policy, **changes):
    return most_restrictive(policy.assess(signals(**changes)))


def test_safe_signals_are_within_policy(policy):
    assert policy.assess(SAFE) == []
    assert most_restrictive([]) == (Action.ALLOW, (Finding(Action.ALLOW, Reason.WITHIN_POLICY),))


@pytest.mark.parametrize('changes, action, reason', [
    (dict(collision_risk=0.29, safety_score=0.71), Action.ALLOW, Reason.WITHIN_POLICY),
    (dict(collision_risk=0.3, safety_score=0.7), Action.DEGRADE, Reason.COLLISION_RISK),
    (dict(collision_risk=0.8, safety_score=0.2), Action.BLOCK, Reason.COLLISION_RISK),
    (dict(constraint_risk=0.49, safety_score=0.51), Action.ALLOW, Reason.WITHIN_POLICY),
    (dict(constraint_risk=0.5, safety_score=0.5), Action.DEGRADE, Reason.CONSTRAINT_RISK),
    (dict(constraint_risk=1.0, safety_score=0.0), Action.BLOCK, Reason.CONSTRAINT_RISK),
    (dict(safety_score=0.19), Action.BLOCK, Reason.LOW_SAFETY_SCORE),
    (dict(time_to_collision=0.59), Action.FALLBACK, Reason.TIME_TO_COLLISION),
    (dict(time_to_collision=0.6), Action.ALLOW, Reason.WITHIN_POLICY),
    (dict(prediction_uncertainty=0.31), Action.ESCALATE, Reason.PREDICTION_UNCERTAINTY),
    (dict(prediction_uncertainty=0.3), Action.ALLOW, Reason.WITHIN_POLICY),
    (dict(coverage_uncertainty=0.51), Action.ESCALATE, Reason.COVERAGE_UNCERTAINTY),
])
def test_each_threshold_edge(policy, changes, action, reason):
    got, findings = decide(policy, **changes)
    assert (got, findings[0].reason) == (action, reason)


def test_most_restrictive_wins_and_every_reason_is_kept(policy):
    action, findings = decide(policy, collision_risk=0.4, safety_score=0.1,
                              prediction_uncertainty=0.9, time_to_collision=0.1)
    assert action == Action.FALLBACK
    assert [f.action for f in findings] == sorted((f.action for f in findings), reverse=True)
    assert {f.reason for f in findings} == {Reason.TIME_TO_COLLISION, Reason.LOW_SAFETY_SCORE,
                                            Reason.PREDICTION_UNCERTAINTY, Reason.COLLISION_RISK}


@pytest.mark.parametrize('changes', [
    dict(safety_score=math.nan), dict(collision_risk=-0.1), dict(constraint_risk=1.5),
    dict(prediction_uncertainty=math.inf), dict(time_to_collision=math.nan),
    dict(min_clearance=math.nan), dict(coverage_uncertainty_threshold=2.0)])
def test_corrupt_signals_fall_back(policy, changes):
    action, findings = decide(policy, **changes)
    assert (action, findings[0].reason) == (Action.FALLBACK, Reason.INTERNAL_ERROR)


def test_input_rejected_by_the_oracle_blocks_whatever_the_risks_say(policy):
    action, findings = decide(policy, evidence_status=EvidenceStatus.INPUT_REJECTED,
                              evidence=(Evidence('input:non_finite', EvidenceKind.INPUT, 0.0),))
    assert (action, findings[0].reason) == (Action.BLOCK, Reason.INPUT_REJECTED_BY_ORACLE)


def test_uncertainty_escalation_can_be_switched_off(policy):
    quiet = dataclasses.replace(policy, escalate_on_uncertainty=False)
    assert quiet.assess(signals(prediction_uncertainty=0.99)) == []


def test_degrade_scales_both_velocities_by_one_factor(policy):
    assert policy.degrade.apply(0.4, 0.2) == (0.2, 0.1)
    assert policy.degrade.apply(1.0, -2.0) == pytest.approx((0.3, -0.6))


@given(v=st.floats(-3, 3), w=st.floats(-3, 3))
def test_degrade_never_changes_the_path_curvature(policy, v, w):
    """Clamping v and w separately bends the path onto an arc that was never scored."""
    dv, dw = policy.degrade.apply(v, w)
    assert abs(dv) <= policy.degrade.max_linear + 1e-12
    assert abs(dw) <= policy.degrade.max_angular + 1e-12
    assert dv * w == pytest.approx(dw * v, abs=1e-12)     # same w/v: same arc
    assert 0 <= (dv / v if v else dw / w if w else 0) <= policy.degrade.speed_scale + 1e-12


def test_an_oracle_shed_verdict_is_an_overload_block(policy):
    found = policy.assess(signals(evidence_status=EvidenceStatus.SHED))
    assert [(f.action, f.reason) for f in found] == [(Action.BLOCK, Reason.OVERLOAD)]


def edited(path, value):
    doc = copy.deepcopy(DOC)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize('path, value, field', [
    (('version',), KeyError, 'policy.version'),
    (('thresholds', 'block_collision_risk'), 1.5, 'thresholds.block_collision_risk'),
    (('thresholds', 'degrade_collision_risk'), 0.9, 'degrade_collision_risk'),
    (('thresholds', 'escalate_on_uncertainty'), 'yes', 'thresholds.escalate_on_uncertainty'),
    (('thresholds', 'fallback_time_to_collision'), -1, 'thresholds.fallback_time_to_collision'),
    (('thresholds', 'block_colision_risk'), 0.5, 'thresholds.block_colision_risk'),
    (('degrade', 'speed_scale'), 2.0, 'degrade.speed_scale'),
])
def test_malformed_policy_names_the_field(path, value, field):
    with pytest.raises(SpecError) as err:
        parse_policy(edited(path, value))
    assert err.value.field == field
