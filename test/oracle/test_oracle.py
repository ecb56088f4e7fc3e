"""Scoring: collision (incl. the corner cut between waypoints), clearance, every constraint,
the uncertainty model, evidence, malformed input. All against the shipped spec."""
import math

import numpy as np
import pytest

from flywheel.oracle.oracle import Oracle, ramp
from flywheel.proposal import ProposalLimits, make_proposal
from flywheel.signals import EvidenceKind, EvidenceStatus
from test.helpers import straight, through


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits('map', 200, ('proposer',)))


def kinds(signals):
    return {e.kind for e in signals.evidence}


def test_a_clear_path_is_safe(oracle):
    s = oracle.evaluate(straight(1.5, 1.0, 0.0, 0.5))
    assert (s.safety_score, s.collision_risk, s.constraint_risk) == (1.0, 0.0, 0.0)
    assert s.time_to_collision == math.inf
    assert s.evidence_status == EvidenceStatus.NONE and s.evidence == ()
    assert s.oracle_version == '1.0.0'


def test_driving_into_a_shelf_is_a_collision_with_time_to_collision(oracle):
    # front at x=3.3 at 0.9 m/s reaches the shelf (x=4) after 0.78 s: the segment starting at 0.7 s
    s = oracle.evaluate(straight(3.0, 4.0, 0.0, 0.9))
    assert s.collision_risk == 1.0 and s.safety_score == 0.0 and s.min_clearance == 0.0
    assert s.time_to_collision == pytest.approx(0.7)
    hit = [e for e in s.evidence if e.kind == EvidenceKind.COLLISION]
    assert hit[0].rule_id == 'shelf_a' and hit[0].value > 0.0
    assert 4.0 <= hit[0].x <= 4.4


def test_cutting_a_corner_between_two_clear_waypoints_is_a_collision(oracle):
    # Both waypoints are clear of shelf_a (x 4..5, y 2.5..5.5) by over a metre, but the straight
    # leg between them crosses its south-west corner.
    p = through([(3.0, 3.2), (5.6, 1.2)])
    for x, y in [(3.0, 3.2), (5.6, 1.2)]:
        single = straight(x, y, 0.0, 0.0, points=1)
        assert oracle.evaluate(single).collision_risk < 1.0
    s = oracle.evaluate(p)
    assert s.collision_risk == 1.0
    assert any(e.rule_id == 'shelf_a' for e in s.evidence)


def test_entering_a_keep_out_zone_is_collision_risk(oracle):
    s = oracle.evaluate(straight(6.5, 2.2, math.pi / 2, 0.5))
    assert s.collision_risk == 1.0
    assert any(e.kind == EvidenceKind.KEEP_OUT and e.rule_id == 'charging_bay' for e in s.evidence)


def test_clearance_below_the_margin_ramps_collision_risk(oracle):
    # parallel to shelf_a's west face (x=4) with 0.1 m between body side and shelf
    s = oracle.evaluate(straight(3.7, 3.0, math.pi / 2, 0.3, points=5))
    assert s.min_clearance == pytest.approx(0.1, abs=1e-9)
    assert s.collision_risk == pytest.approx(1.0 - 0.1 / 0.25)
    assert any(e.kind == EvidenceKind.CLEARANCE for e in s.evidence)


def test_ramp_edges():
    assert ramp(0.8) == 0.0 and ramp(0.9) == pytest.approx(0.5) and ramp(1.0) == 1.0
    assert ramp(3.0) == 1.0


def test_overspeed_violates_the_speed_limit(oracle):
    s = oracle.evaluate(straight(1.5, 1.0, 0.0, 1.2, points=5))
    assert s.constraint_risk == 1.0
    assert EvidenceKind.SPEED in kinds(s)


def test_fast_yaw_rate(oracle):
    s = oracle.evaluate(straight(2.0, 6.0, 0.0, 0.0, points=5, w=2.0))
    assert s.constraint_risk == 1.0 and EvidenceKind.YAW_RATE in kinds(s)


def test_tight_curvature(oracle):
    s = oracle.evaluate(straight(2.0, 6.0, 0.0, 0.1, points=5, w=1.0))
    assert s.constraint_risk == 1.0 and EvidenceKind.CURVATURE in kinds(s)


def test_turning_in_place_is_not_a_curvature_violation(oracle):
    s = oracle.evaluate(straight(2.0, 6.0, 0.0, 0.0, points=5, w=1.0))
    assert EvidenceKind.CURVATURE not in kinds(s)


def test_hard_braking_violates_acceleration(oracle):
    p = straight(1.5, 1.0, 0.0, 0.5, points=5)
    p.states[3:, 3] = 0.0          # 0.5 -> 0 m/s within 0.1 s: 5 m/s^2
    s = oracle.evaluate(p)
    assert s.constraint_risk == 1.0 and EvidenceKind.ACCELERATION in kinds(s)


def test_leaving_the_geofence(oracle):
    s = oracle.evaluate(straight(11.0, 6.5, 0.0, 0.8, points=20))
    assert s.constraint_risk == 1.0 and EvidenceKind.GEOFENCE in kinds(s)


def test_speed_zone_limit_applies_inside_only(oracle):
    inside = oracle.evaluate(straight(0.5, 3.4, math.pi / 2, 0.5, points=10))
    outside = oracle.evaluate(straight(2.0, 3.4, math.pi / 2, 0.5, points=10))
    assert inside.constraint_risk == 1.0
    assert any(e.rule_id == 'crosswalk' for e in inside.evidence)
    assert outside.constraint_risk == 0.0


def test_the_command_is_checked_even_if_the_trajectory_is_fine(spec):
    loose = Oracle(spec, ProposalLimits('map', 200, ('proposer',), command_tolerance=10.0))
    p = straight(1.5, 1.0, 0.0, 0.5, points=5)
    p = make_proposal(p.proposal_id, p.proposer_id, p.seq, p.frame_id, p.stamp_ns, p.t_ns,
                      p.states, (3.0, 0.0))
    s = loose.evaluate(p)
    assert s.constraint_risk == 1.0 and EvidenceKind.SPEED in kinds(s)


def test_prediction_uncertainty_grows_past_the_validated_speed(oracle):
    s = oracle.evaluate(straight(1.5, 1.0, 0.0, 1.0, points=3))
    assert s.prediction_uncertainty == pytest.approx((1.0 - 0.8) / 0.8)
    assert s.prediction_uncertainty_threshold == 0.3


def test_prediction_uncertainty_outside_the_validated_region(spec):
    doc_spec = spec.__class__(**{**spec.__dict__, 'uncertainty': spec.uncertainty.__class__(
        validated_region=spec.geofence.buffer(-3.0), validated_max_speed=0.8, threshold=0.3)})
    s = Oracle(doc_spec, ProposalLimits()).evaluate(straight(1.5, 1.0, 0.0, 0.5, points=10))
    assert s.prediction_uncertainty == 1.0
    assert EvidenceKind.UNCERTAINTY in kinds(s)


def test_coverage_uncertainty_in_unaudited_cells(oracle):
    # cells x in [6, 7), y in [3, 5) have coverage 0.2
    s = oracle.evaluate(straight(6.5, 3.5, math.pi / 2, 0.0, points=1))
    assert s.coverage_uncertainty == pytest.approx(0.8)
    assert EvidenceKind.COVERAGE in kinds(s)


def test_coverage_outside_the_grid_counts_as_unaudited(spec):
    assert spec.coverage.coverage_at(np.array([[-5.0, -5.0], [1.5, 1.5]])).tolist() == [0.0, 1.0]


def test_evidence_is_truncated_worst_first(spec):
    few = spec.__class__(**{**spec.__dict__, 'max_evidence': 1})
    s = Oracle(few, ProposalLimits()).evaluate(straight(3.0, 4.0, 0.0, 1.2))
    assert s.evidence_status == EvidenceStatus.TRUNCATED and len(s.evidence) == 1
    assert s.evidence[0].severity == 1.0


def test_malformed_input_is_rejected_with_every_risk_at_one(oracle):
    p = straight(1.5, 1.0, 0.0, 0.5)
    p.states[2, 0] = math.nan
    s = oracle.evaluate(p)
    assert s.evidence_status == EvidenceStatus.INPUT_REJECTED
    assert (s.collision_risk, s.constraint_risk, s.safety_score) == (1.0, 1.0, 0.0)
    assert [e.rule_id for e in s.evidence] == ['input:non_finite']


def test_scoring_is_deterministic(oracle):
    a = oracle.evaluate(straight(3.0, 4.0, 0.0, 0.9))
    b = oracle.evaluate(straight(3.0, 4.0, 0.0, 0.9))
    assert a == b


def test_a_spec_without_obstacles_reports_infinite_clearance(spec):
    bare = spec.__class__(**{**spec.__dict__, 'obstacles': (), 'keep_out': ()})
    s = Oracle(bare, ProposalLimits()).evaluate(straight(3.0, 4.0, 0.0, 0.5))
    assert s.min_clearance == math.inf and s.collision_risk == 0.0


def test_clearance_is_exact_within_the_horizon_and_infinite_beyond(oracle, spec):
    import shapely
    from flywheel.oracle.sweep import sweep
    zones = [z.polygon for z in spec.obstacles + spec.keep_out]
    rng = np.random.default_rng(3)
    for _ in range(40):
        x, y = rng.uniform(1.0, 11.0), rng.uniform(1.0, 7.0)
        p = straight(x, y, rng.uniform(-np.pi, np.pi), rng.uniform(0.0, 0.6), points=10,
                     w=rng.uniform(-0.5, 0.5))
        s = oracle.evaluate(p)
        hulls = sweep(p.states[:, :3], oracle._footprint_xy, spec.max_sweep_yaw_step).hulls
        truth = min(shapely.distance(h, z) for h in hulls for z in zones)
        if truth <= spec.limits.clearance_horizon:
            assert s.min_clearance == pytest.approx(truth, abs=1e-9)
        else:
            assert s.min_clearance == math.inf
