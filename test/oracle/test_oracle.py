"""Scoring: collision (incl. the corner cut between waypoints and the arc between two samples),
clearance, the held command, every constraint along the swept region, the uncertainty model,
evidence, malformed input, shedding. Against the shipped spec (plus a zone where a test needs
one)."""
import dataclasses
import math

import numpy as np
import pytest
import shapely
from shapely import affinity

from flywheel.oracle.oracle import Oracle, ramp
from flywheel.oracle.spec import Zone
from flywheel.proposal import ProposalLimits
from flywheel.signals import EvidenceKind, EvidenceStatus
from test.helpers import driven, remade, straight, through


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits('map', 200, ('proposer',)))


def kinds(signals):
    return {e.kind for e in signals.evidence}


def with_zones(spec, **zones):
    """The shipped spec plus zones, e.g. obstacles=[Zone(...)]; added to the shipped ones."""
    return dataclasses.replace(spec, **{k: getattr(spec, k) + tuple(v) for k, v in zones.items()})


def footprint_at(spec, x, y, yaw):
    return affinity.translate(affinity.rotate(spec.footprint, yaw, origin=(0, 0),
                                              use_radians=True), x, y)


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
        standing = straight(x, y, 0.0, 0.0, points=5)
        assert oracle.evaluate(standing).collision_risk < 1.0
    s = oracle.evaluate(p)
    assert s.collision_risk == 1.0
    assert any(e.rule_id == 'shelf_a' for e in s.evidence)


def test_entering_a_keep_out_zone_is_collision_risk(oracle):
    s = oracle.evaluate(straight(6.5, 2.2, math.pi / 2, 0.5))
    assert s.collision_risk == 1.0
    assert any(e.kind == EvidenceKind.KEEP_OUT and e.rule_id == 'charging_bay' for e in s.evidence)


def test_clearance_below_the_margin_ramps_collision_risk(oracle, spec):
    # parallel to shelf_a's west face (x=4) with 0.1 m between body side and shelf; the swept
    # region is widest along the hold, inflated for a start anywhere within the anchor tolerances
    s = oracle.evaluate(straight(3.7, 3.0, math.pi / 2, 0.3, points=5))
    radius = math.hypot(0.3, 0.2)
    hold_margin = (spec.anchor_tolerance + spec.anchor_yaw_tolerance
                   * (radius + 0.3 * spec.command_hold) + spec.sweep_tolerance)
    assert s.min_clearance == pytest.approx(0.1 - hold_margin, abs=1e-9)
    assert s.collision_risk == pytest.approx(1.0 - (0.1 - hold_margin) / 0.25)
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
    p = driven(1.5, 1.0, 0.0, [(0.5, 0.0)] * 3 + [(0.0, 0.0)] * 2)  # 0.5 -> 0 m/s in 0.1 s
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
    p = remade(straight(1.5, 1.0, 0.0, 0.5, points=5), command=(3.0, 0.0))
    s = loose.evaluate(p)
    assert s.constraint_risk == 1.0 and EvidenceKind.SPEED in kinds(s)


def test_prediction_uncertainty_grows_past_the_validated_speed(oracle):
    s = oracle.evaluate(straight(1.5, 1.0, 0.0, 1.0, points=5))
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
    s = oracle.evaluate(straight(6.5, 3.5, math.pi / 2, 0.0, points=5))
    assert s.coverage_uncertainty == pytest.approx(0.8)
    assert EvidenceKind.COVERAGE in kinds(s)


def test_coverage_outside_the_grid_counts_as_unaudited(oracle, spec):
    x0, y0 = spec.coverage.origin
    s = oracle.evaluate(straight(x0 - 5.0, y0 - 5.0, 0.0, 0.0, points=5))
    assert s.coverage_uncertainty == 1.0
    worst = [e for e in s.evidence if e.kind == EvidenceKind.COVERAGE][0]
    assert worst.x < x0 and worst.y < y0


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
    zones = [z.polygon for z in spec.obstacles + spec.keep_out]
    rng = np.random.default_rng(3)
    for _ in range(40):
        x, y = rng.uniform(1.0, 11.0), rng.uniform(1.0, 7.0)
        p = straight(x, y, rng.uniform(-np.pi, np.pi), rng.uniform(0.0, 0.6), points=10,
                     w=rng.uniform(-0.5, 0.5))
        s = oracle.evaluate(p)
        hulls = oracle.swept(p).hulls
        truth = min(shapely.distance(h, z) for h in hulls for z in zones)
        if truth <= spec.limits.clearance_horizon:
            assert s.min_clearance == pytest.approx(truth, abs=1e-9)
        else:
            assert s.min_clearance == math.inf


# -- the motion between and beyond the samples -----------------------------------------------

# A left quarter turn of radius 1.2 m at 0.8 m/s past shelf_a's south-west corner: its two end
# footprints and their hull (the chord) are clear of the shelf by 0.16 m, its arc is not.
ARC = dict(x=3.5, y=1.5, yaw=math.pi / 4, v=0.8, w=0.8 / 1.2, duration=(math.pi / 2) * 1.2 / 0.8)


def quarter_arc(samples: int):
    twist = (ARC['v'], ARC['w'])
    return driven(ARC['x'], ARC['y'], ARC['yaw'], [twist] * (samples + 1),
                  ARC['duration'] / samples)


def test_an_arc_sampled_at_two_points_is_swept_along_the_arc_not_its_chord(spec):
    p = quarter_arc(1)
    shelf = spec.obstacles[0].polygon
    ends = [footprint_at(spec, *q) for q in p.states[:, :3]]
    chord = shapely.convex_hull(shapely.union_all(ends))
    assert chord.distance(shelf) > 0.15
    # even where a 2.4 s gap between samples is allowed, the arc between them is what is scored
    loose = Oracle(spec, ProposalLimits(max_sample_gap=2.5))
    s = loose.evaluate(p)
    assert s.collision_risk == 1.0
    assert [e.rule_id for e in s.evidence if e.kind == EvidenceKind.COLLISION] == ['shelf_a']


def test_an_arc_sampled_at_two_points_is_refused_by_default(oracle):
    s = oracle.evaluate(quarter_arc(1))
    assert s.evidence_status == EvidenceStatus.INPUT_REJECTED
    assert 'input:sample_gap' in [e.rule_id for e in s.evidence]


def test_two_arc_samples_with_a_straight_twist_are_a_kinematic_mismatch(spec):
    p = quarter_arc(1)
    chord = math.dist(p.states[0, :2], p.states[1, :2]) / ARC['duration']
    states = p.states.copy()
    states[:, 3:] = chord, 0.0
    s = Oracle(spec, ProposalLimits(max_sample_gap=2.5)).evaluate(
        remade(p, states=states, command=(chord, 0.0)))
    assert [e.rule_id for e in s.evidence] == ['input:kinematic_mismatch']
    assert s.collision_risk == 1.0


def test_the_same_arc_sampled_every_100_ms_is_a_collision(oracle):
    s = oracle.evaluate(quarter_arc(24))
    assert s.evidence_status != EvidenceStatus.INPUT_REJECTED
    assert s.collision_risk == 1.0 and 'shelf_a' in [e.rule_id for e in s.evidence]


def test_a_turn_over_half_a_circle_in_one_segment_is_swept_the_way_w_turns(spec):
    # 4 rad counter-clockwise in 0.5 s on a 0.5 m radius: over the top of the circle, where the
    # post is. The short way round between the two end yaws (2.28 rad clockwise) passes below.
    post = shapely.box(1.91, 7.1, 2.11, 7.3)
    oracle = Oracle(with_zones(spec, obstacles=[Zone('post', post)]), ProposalLimits())
    p = driven(2.0, 6.0, 0.0, [(0.1, 0.0), (4.0, 8.0), (0.0, 0.0)], [0.1, 0.5])
    for q in p.states[:, :3]:
        assert footprint_at(spec, *q).distance(post) > 0.1
    swept = oracle.swept(p)
    hit = shapely.intersects(swept.hulls, post)
    assert set(swept.segment[hit]) == {1}                  # the turning segment, not the hold
    s = oracle.evaluate(p)
    assert s.collision_risk == 1.0 and s.time_to_collision >= 0.1
    assert 'post' in [e.rule_id for e in s.evidence]


def test_a_command_held_for_command_hold_reaches_a_shelf_the_trajectory_stops_short_of(oracle,
                                                                                      spec):
    # Front 0.26 m from shelf_a; 0.89 m/s for 10 ms, then standing: the trajectory ends clear,
    # but the Gate may hold the command itself for command_hold (0.89 * 0.4 = 0.36 m).
    p = driven(4.0 - 0.26 - 0.3, 4.0, 0.0, [(0.89, 0.0), (0.0, 0.0), (0.0, 0.0)], [0.01, 0.4])
    swept = oracle.swept(p)
    trajectory = swept.hulls[swept.segment < len(p.states) - 1]
    assert not shapely.intersects(trajectory, spec.obstacles[0].polygon).any()
    s = oracle.evaluate(p)
    assert s.collision_risk == 1.0 and s.time_to_collision == 0.0
    assert any(e.rule_id == 'shelf_a' for e in s.evidence)


def test_a_single_point_is_shorter_than_the_scored_hold(oracle):
    s = oracle.evaluate(straight(1.5, 1.0, 0.0, 0.0, points=1))
    assert s.evidence_status == EvidenceStatus.INPUT_REJECTED
    assert [e.rule_id for e in s.evidence] == ['input:horizon_too_short']


def test_the_signals_say_what_they_cover(oracle, spec):
    s = oracle.evaluate(straight(1.5, 1.0, 0.0, 0.5))
    assert (s.scored_hold, s.anchor_tolerance, s.anchor_yaw_tolerance) == (
        spec.command_hold, spec.anchor_tolerance, spec.anchor_yaw_tolerance)
    assert (s.stamp_ns, s.epoch, s.seq, s.signature) == (0, 0, 0, b'')


def test_a_speed_zone_crossed_between_two_samples_outside_it_is_flagged(spec):
    strip = Zone('strip', shapely.box(2.2, 5.5, 2.3, 6.5), max_speed=0.3)
    oracle = Oracle(with_zones(spec, speed_zones=[strip]), ProposalLimits())
    p = driven(2.0, 6.0, 0.0, [(0.9, 0.0)] * 3, 0.5)
    assert not shapely.contains_xy(strip.polygon, p.states[:, 0], p.states[:, 1]).any()
    s = oracle.evaluate(p)
    flagged = [e for e in s.evidence if e.rule_id == 'strip']
    assert s.constraint_risk == 1.0 and flagged[0].kind == EvidenceKind.SPEED_ZONE
    assert flagged[0].value == pytest.approx(0.9)


def test_a_speed_zone_reached_only_by_the_held_command_is_flagged_at_its_speed(spec):
    strip = Zone('strip', shapely.box(2.6, 5.5, 2.7, 6.5), max_speed=0.3)
    oracle = Oracle(with_zones(spec, speed_zones=[strip]), ProposalLimits())
    # 0.9 m/s for 10 ms, then standing 0.4 s: only the held command reaches the strip
    p = driven(2.0, 6.0, 0.0, [(0.9, 0.0), (0.0, 0.0), (0.0, 0.0)], [0.01, 0.4])
    s = oracle.evaluate(p)
    assert [e.value for e in s.evidence if e.rule_id == 'strip'] == [pytest.approx(0.9)]


def test_a_coverage_cell_crossed_between_samples_is_counted(spec):
    cells = np.ones((80, 120))
    cells[60, 22] = 0.2                  # x in [2.2, 2.3), y in [6.0, 6.1)
    grid = dataclasses.replace(spec.coverage, resolution=0.1, cells=cells)
    oracle = Oracle(dataclasses.replace(spec, coverage=grid), ProposalLimits())
    p = driven(2.0, 6.0, 0.0, [(0.9, 0.0)] * 3, 0.5)
    assert not any(2.2 <= x < 2.3 and 6.0 <= y < 6.1 for x, y in p.states[:, :2])  # no sample
    s = oracle.evaluate(p)
    assert s.coverage_uncertainty == pytest.approx(0.8)
    worst = [e for e in s.evidence if e.kind == EvidenceKind.COVERAGE][0]
    assert (worst.x, worst.y) == (pytest.approx(2.25), pytest.approx(6.05))


def test_coverage_counts_cells_a_long_swept_hull_spans(spec):
    # one 0.5 s segment at 0.9 m/s over a 1 cm grid: its hull spans ~75 cells, listed on the grid
    cells = np.ones((800, 1200))
    cells[600, 240] = 0.0
    grid = dataclasses.replace(spec.coverage, resolution=0.01, cells=cells)
    oracle = Oracle(dataclasses.replace(spec, coverage=grid), ProposalLimits())
    s = oracle.evaluate(driven(2.0, 6.0, 0.0, [(0.9, 0.0)] * 3, 0.5))
    assert s.coverage_uncertainty == 1.0


def test_shedding_scores_nothing_and_stops_everything(oracle, monkeypatch):
    p = straight(3.0, 4.0, 0.0, 0.9)
    monkeypatch.setattr(oracle, 'swept', None)     # shedding must not sweep
    s = oracle.shed(p)
    assert s.evidence_status == EvidenceStatus.SHED and s.evidence == ()
    assert (s.collision_risk, s.constraint_risk, s.safety_score) == (1.0, 1.0, 0.0)
    assert (s.prediction_uncertainty, s.coverage_uncertainty) == (1.0, 1.0)
    assert s.proposal_digest == p.digest and s.proposal_id == p.proposal_id


@pytest.mark.parametrize('v, w', [(1e3, 1e3), (1e3, -1e-12), (1e150, 0.0), (0.0, 1e9)])
@pytest.mark.filterwarnings('ignore:overflow:RuntimeWarning', 'ignore:invalid:RuntimeWarning')
def test_absurd_twists_are_scored_or_refused_without_raising(oracle, v, w):
    s = oracle.evaluate(straight(5.0, 4.0, 0.0, v, points=5, w=w))
    assert s.safety_score == 0.0


# -- the zone index: sparse (pair by pair) and dense (indexed) scoring agree with every pair ----

@pytest.fixture(params=['sparse', 'dense'])
def zone_path(request, monkeypatch):
    """Force the zone index's sparse or dense way (it picks one by the zones near the sweep)."""
    from flywheel.oracle.oracle import _ZoneIndex
    if request.param == 'sparse':
        for name in ('QUERY', 'PAIRS', 'VERTICES'):
            monkeypatch.setattr(_ZoneIndex, name, 10**12)
    else:
        monkeypatch.setattr(_ZoneIndex, 'QUERY', -1)
    return request.param


def every_pair(oracle, p):
    """(collision risk, clearance, time to collision, zones touched, nearest distance per zone)
    from the exact distance of every (swept hull, zone) pair: what the index must reproduce."""
    swept = oracle.swept(p)
    zones = oracle.spec.obstacles + oracle.spec.keep_out
    d = shapely.distance(swept.hulls[:, None],
                         np.array([z.polygon for z in zones], dtype=object)[None, :])
    if (d == 0.0).any():
        hull, zone = np.nonzero(d == 0.0)
        return 1.0, 0.0, float(swept.start[hull].min()), {zones[z].zone_id for z in zone}, d.min(0)
    gap = float(d.min())
    if gap > oracle.spec.limits.clearance_horizon:
        return 0.0, math.inf, math.inf, set(), d.min(0)
    return max(0.0, 1.0 - gap / oracle.spec.limits.clearance_margin), gap, math.inf, set(), \
        d.min(0)


def cluttered(spec, rng, count):
    """The shipped spec with ``count`` random zones around (2..8, 2..6): boxes, thin slivers,
    posts small enough to fit inside a swept hull, and large non-convex zones."""
    zones = []
    for i in range(count):
        x, y = rng.uniform(1.5, 8.5), rng.uniform(1.5, 6.5)
        kind = i % 4
        if kind == 0:
            w, h = rng.uniform(0.05, 0.6, 2)
            polygon = shapely.box(x, y, x + w, y + h)
        elif kind == 1:
            a = rng.uniform(0.0, math.pi)
            polygon = shapely.LineString([(x, y), (x + 2.0 * math.cos(a), y + 2.0 * math.sin(a))]
                                         ).buffer(0.005, cap_style='flat')
        elif kind == 2:
            polygon = shapely.Point(x, y).buffer(rng.uniform(0.01, 0.04), quad_segs=2)
        else:
            a = np.linspace(0.0, 2.0 * math.pi, 16, endpoint=False)
            r = rng.uniform(0.3, 1.2) * (1.0 - 0.5 * (np.arange(16) % 2))
            polygon = shapely.Polygon(np.c_[x + r * np.cos(a), y + r * np.sin(a)])
        zones.append(Zone(f'z{i}', polygon))
    half = count // 2
    return dataclasses.replace(spec, obstacles=tuple(zones[:half]), keep_out=tuple(zones[half:]),
                               max_evidence=64)


@pytest.mark.parametrize('count', [8, 120])
def test_contact_and_clearance_agree_with_every_pair(spec, zone_path, count):
    rng = np.random.default_rng(count)
    world = cluttered(spec, rng, count)
    oracle = Oracle(world, ProposalLimits())
    ids = [z.zone_id for z in world.obstacles + world.keep_out]
    for _ in range(40):
        p = straight(rng.uniform(2.0, 8.0), rng.uniform(2.0, 6.0), rng.uniform(-np.pi, np.pi),
                     rng.uniform(0.0, 0.8), points=int(rng.integers(5, 30)),
                     w=rng.uniform(-0.8, 0.8))
        s = oracle.evaluate(p)
        risk, clearance, ttc, touched, nearest = every_pair(oracle, p)
        assert s.collision_risk == pytest.approx(risk, abs=1e-9)
        assert s.min_clearance == pytest.approx(clearance, abs=1e-9)
        assert s.time_to_collision == ttc
        hits = {e.rule_id for e in s.evidence if e.kind in (EvidenceKind.COLLISION,
                                                             EvidenceKind.KEEP_OUT)}
        assert hits == touched
        for e in s.evidence:
            if e.kind == EvidenceKind.CLEARANCE:          # names a zone that near
                assert nearest[ids.index(e.rule_id)] == pytest.approx(e.value, abs=1e-9)


def test_a_zone_wholly_inside_the_swept_region_is_a_collision(spec, zone_path):
    # a 2 cm post under a robot standing still: no hull's boundary comes near it
    post = shapely.Point(1.55, 1.0).buffer(0.02)
    oracle = Oracle(with_zones(spec, obstacles=[Zone('post', post)]), ProposalLimits())
    p = straight(1.5, 1.0, 0.0, 0.0, points=5)
    hulls = oracle.swept(p).hulls
    assert shapely.contains_properly(hulls, post).all()
    assert shapely.distance(shapely.boundary(hulls), post).min() > 0.1
    s = oracle.evaluate(p)
    assert s.collision_risk == 1.0
    assert [e.rule_id for e in s.evidence if e.kind == EvidenceKind.COLLISION] == ['post']


def test_a_robot_wholly_inside_a_keep_out_zone_collides_at_once(spec, zone_path):
    bay = shapely.box(0.5, 0.3, 3.5, 1.7)
    oracle = Oracle(with_zones(spec, keep_out=[Zone('bay', bay)]), ProposalLimits())
    p = straight(1.5, 1.0, 0.0, 0.2, points=10)
    assert all(shapely.contains_properly(bay, h) for h in oracle.swept(p).hulls)
    s = oracle.evaluate(p)
    assert s.collision_risk == 1.0 and s.time_to_collision == 0.0
    assert [e.rule_id for e in s.evidence if e.kind == EvidenceKind.KEEP_OUT] == ['bay']


def test_more_zones_touched_than_evidence_holds_are_truncated_in_spec_order(spec, zone_path):
    # ten posts across the path, 0.3 m apart, listed far to near: the evidence names the first
    # three listed, the time to collision is that of the nearest
    posts = [Zone(f'post{k}', shapely.box(2.5 + 0.3 * k, 0.95, 2.55 + 0.3 * k, 1.05))
             for k in reversed(range(10))]
    world = dataclasses.replace(with_zones(spec, obstacles=posts), max_evidence=3)
    oracle, p = Oracle(world, ProposalLimits()), straight(1.5, 1.0, 0.0, 0.8, points=50)
    s = oracle.evaluate(p)
    assert s.evidence_status == EvidenceStatus.TRUNCATED
    assert [e.rule_id for e in s.evidence] == ['post9', 'post8', 'post7']
    assert s.time_to_collision == every_pair(oracle, p)[2] > 0.0


# -- a candidate on trial reuses the active release's check and sweep only where they fit -------

def test_a_candidate_that_sweeps_alike_reuses_the_sweep_and_scores_as_if_alone(spec, oracle,
                                                                              monkeypatch):
    # release 2: a new shelf across the path, the same robot
    candidate = Oracle(dataclasses.replace(with_zones(spec, obstacles=[
        Zone('new', shapely.box(2.2, 0.6, 2.4, 1.4))]), version='2.0.0'), oracle.limits)
    p = straight(1.5, 1.0, 0.0, 0.5)
    alone = candidate.evaluate(p)
    checked = oracle.check(p)
    assert checked.fits(candidate, p)
    monkeypatch.setattr(candidate, 'swept', None)     # reusing must not sweep again
    shared = candidate.evaluate(p, checked)
    assert shared == alone and shared.collision_risk == 1.0
    assert oracle.evaluate(p, checked).collision_risk == 0.0


@pytest.mark.parametrize('change', [
    {'footprint': shapely.box(-0.6, -0.6, 0.6, 0.6)},          # a bigger robot
    {'command_hold': 0.8}, {'anchor_tolerance': 0.2}, {'anchor_yaw_tolerance': 0.2},
    {'sweep_tolerance': 0.001}])
def test_a_candidate_that_sweeps_otherwise_ignores_the_active_release_s_sweep(spec, oracle,
                                                                              change):
    candidate = Oracle(dataclasses.replace(spec, **change), oracle.limits)
    p = straight(1.5, 1.0, 0.0, 0.5)
    checked = oracle.check(p)
    assert not checked.fits(candidate, p)
    assert candidate.evaluate(p, checked) == candidate.evaluate(p)
    assert candidate.evaluate(p, checked).scored_hold == candidate.spec.command_hold


def test_a_check_fits_only_its_own_proposal_and_limits(spec, oracle):
    p, q = straight(1.5, 1.0, 0.0, 0.5), straight(3.0, 4.0, 0.0, 0.9)
    checked = oracle.check(p)
    assert not checked.fits(oracle, q)
    assert oracle.evaluate(q, checked) == oracle.evaluate(q)          # q's own check, not p's
    stricter = Oracle(spec, dataclasses.replace(oracle.limits, max_points=5))
    assert not checked.fits(stricter, p)
    assert stricter.evaluate(p, checked).evidence_status == EvidenceStatus.INPUT_REJECTED
