"""The verifier: planted unsafe cases it finds (some the Oracle misses), safe ones it passes, the
deadline, malformed input, and soundness between its samples against a far denser check."""
import ast
import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely import affinity
from shapely.geometry import Polygon, box

from flywheel.audit.incident import IncidentReport, Severity
from flywheel.enforcement.decision import most_restrictive
from flywheel.kinematics import advance
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import Zone
from flywheel.proposal import ProposalLimits
from flywheel.verify.verifier import (IncidentRegion, Knowledge, Verification, Verifier,
                                      VerifierConfig, VerifyReason)
from test.helpers import driven, remade, straight

HOLD = 0.4
SRC = Path(__file__).resolve().parents[2] / 'src' / 'flywheel' / 'verify' / 'verifier.py'


def clock(step_ns: int = 0, start: int = 1_000_000_000):
    """A fake clock advancing ``step_ns`` per reading."""
    ticks = itertools.count()
    return lambda: start + next(ticks) * step_ns


@pytest.fixture(scope='module')
def verifier(spec):
    return Verifier(Knowledge.of(spec))


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits('map', 200, ('proposer',)))


def approves(oracle, policy, proposal) -> bool:
    action, _ = most_restrictive(policy.assess(oracle.evaluate(proposal)))
    return action.approves


def check(verifier, proposal, hold=HOLD, now=None):
    return verifier.check(proposal, hold, now or clock())


# -- safe cases -------------------------------------------------------------------------------

def test_a_clear_path_is_safe_and_names_its_proposal(verifier):
    p = straight(1.5, 1.0, 0.0, 0.5)
    r = check(verifier, p)
    assert r.safe and r.reason is VerifyReason.SAFE
    assert r.digest == p.digest
    assert (r.x, r.y) == (1.5, 1.0)
    assert r.min_clearance == math.inf
    x0, y0, x1, y1 = r.bounds
    assert x0 < 1.5 < x1 and y0 < 1.0 < y1


def test_passing_beside_a_shelf_is_safe_with_its_clearance(verifier):
    # the footprint's left edge at y = 2.2 drives under shelf_a (y >= 2.5): 0.3 m clear
    r = check(verifier, straight(3.0, 2.0, 0.0, 0.5, points=30))
    assert r.safe
    assert r.min_clearance == pytest.approx(0.3, abs=1e-9)


def test_the_same_check_gives_the_same_answer(verifier):
    p = straight(3.0, 2.0, 0.3, 0.6, w=0.4)
    a, b = check(verifier, p), check(verifier, p)
    assert dataclasses.replace(a, elapsed_ns=0) == dataclasses.replace(b, elapsed_ns=0)


# -- planted unsafe cases -----------------------------------------------------------------------

def test_driving_into_a_shelf_is_a_collision_on_the_shelf(verifier):
    r = check(verifier, straight(3.0, 4.0, 0.0, 0.8))
    assert not r.safe and r.reason is VerifyReason.COLLISION and r.zone_id == 'shelf_a'
    assert r.x == pytest.approx(4.0) and 2.5 <= r.y <= 5.5      # a point of the shelf
    assert r.time_s == pytest.approx(0.7 / 0.8, abs=0.03) and not r.hold
    assert r.min_clearance == 0.0


def test_entering_the_charging_bay_is_keep_out(verifier):
    r = check(verifier, straight(6.5, 2.3, math.pi / 2, 0.5))
    assert r.reason is VerifyReason.KEEP_OUT and r.zone_id == 'charging_bay'


def test_leaving_the_geofence(verifier):
    r = check(verifier, straight(11.0, 7.0, 0.0, 0.5))
    assert r.reason is VerifyReason.GEOFENCE and r.x > 11.0


def test_speeding_in_the_crosswalk_is_a_limit_with_its_values(verifier):
    r = check(verifier, straight(0.5, 2.5, math.pi / 2, 0.6))
    assert r.reason is VerifyReason.LIMIT and r.zone_id == 'crosswalk'
    assert (r.limit, r.value) == (0.3, 0.6)
    assert 0.0 <= r.x <= 1.0 and r.y == pytest.approx(3.2)     # the crosswalk's edge


def test_a_global_speed_limit(verifier):
    r = check(verifier, straight(1.5, 1.0, 0.0, 1.2))
    assert r.reason is VerifyReason.LIMIT and r.zone_id == 'limit:max_speed'
    assert r.value == pytest.approx(1.2)


def footprint_at(spec, x, y, yaw):
    return affinity.translate(affinity.rotate(spec.footprint, yaw, origin=(0, 0),
                                              use_radians=True), x, y)


def test_an_obstacle_met_only_between_two_samples_is_found(spec):
    # points 0.5 s apart on a tight arc: a corner sweeps outside every sampled placement
    p = driven(3.0, 1.5, 0.0, [(0.6, 1.5)] * 5, dt=0.5)
    sampled = shapely.union_all([footprint_at(spec, *s[:3]) for s in p.states])
    t = np.arange(0.0, 2.0, 0.005)
    dense = advance(np.tile(p.states[0, :3], (len(t), 1)), np.tile(p.states[0, 3:], (len(t), 1)),
                    t)
    swept = shapely.union_all([footprint_at(spec, *q) for q in dense])
    gap = swept.difference(sampled.buffer(0.03))
    assert not gap.is_empty
    c = gap.representative_point()
    cone = Zone('cone', box(c.x - 0.005, c.y - 0.005, c.x + 0.005, c.y + 0.005))
    assert not cone.polygon.intersects(sampled)
    r = check(Verifier(Knowledge.of(spec, hazards=[cone])), p)
    assert r.reason is VerifyReason.COLLISION and r.zone_id == 'cone'


def test_the_held_command_is_checked_beyond_where_the_trajectory_goes(spec):
    # the trajectory brakes to a stop within 0.2 m; the command held 0.4 s runs on 0.32 m
    wall = Zone('wall', box(3.55, 0.5, 3.7, 1.5))     # 0.25 m ahead of the front at x = 3.3
    v = Verifier(Knowledge.of(spec, hazards=[wall]))
    p = driven(3.0, 1.0, 0.0, [(0.8, 0.0), (0.6, 0.0), (0.4, 0.0), (0.2, 0.0)] + [(0.0, 0.0)] * 6)
    assert check(v, p).reason is not VerifyReason.LIMIT
    r = check(v, p)
    assert r.reason is VerifyReason.COLLISION and r.hold
    assert check(v, p, hold=0.15).safe


def test_an_incident_region_the_spec_lacks_is_unsafe_where_the_oracle_allows(
        spec, oracle, policy):
    incident = IncidentReport(stamp_ns=1, frame_id='map', severity=Severity.COLLISION, x=2.5,
                              y=6.5, object_id='spill', distance=0.0, reporter='sim',
                              description='slid on a spill')
    v = Verifier(Knowledge.of(spec, [incident]))
    p = straight(1.0, 6.5, 0.0, 0.5, points=30)
    assert approves(oracle, policy, p)
    r = check(v, p)
    assert r.reason is VerifyReason.INCIDENT_REGION and not r.safe
    assert math.hypot(r.x - 2.5, r.y - 6.5) <= 0.31       # on the region's edge


def test_a_hazard_beyond_the_spec_is_a_collision_the_oracle_misses(spec, oracle, policy):
    pallet = Zone('stray_pallet', Polygon([(11.2, 7.3), (11.9, 7.3), (11.9, 7.9), (11.2, 7.9)]))
    v = Verifier(Knowledge.of(spec, hazards=[pallet]))
    p = straight(10.2, 7.4, 0.0, 0.5, points=20)
    assert approves(oracle, policy, p)
    r = check(v, p)
    assert r.reason is VerifyReason.COLLISION and r.zone_id == 'stray_pallet'


def test_a_near_miss_region_grows_by_its_distance(spec):
    near = {'incident_id': 'a', 'severity': 'NEAR_MISS', 'x': 2.0, 'y': 6.0, 'distance': 0.2}
    region = IncidentRegion.of(near)
    assert region.radius == 0.2
    k = Knowledge.of(spec, [near])
    tight = Verifier(k, VerifierConfig(incident_margin=0.0))
    # the footprint's left edge passes 0.15 m from the incident: inside 0.2, outside 0.1
    p = straight(1.0, 5.8 - 0.2 + 0.05, 0.0, 0.5, points=30)
    assert check(tight, p).reason is VerifyReason.INCIDENT_REGION
    region = IncidentRegion('b', 2.0, 6.0, Severity.NEAR_MISS, 0.1)
    looser = Verifier(dataclasses.replace(k, incidents=(region,)),
                      VerifierConfig(incident_margin=0.0))
    assert check(looser, p).safe


def test_an_info_incident_is_no_region():
    assert IncidentRegion.of({'severity': 'INFO', 'x': 1.0, 'y': 1.0}) is None
    with pytest.raises(ValueError, match='severity'):
        IncidentRegion.of({'severity': 'BAD', 'x': 1.0, 'y': 1.0})


def test_one_placement_breaking_two_rules_reports_the_collision(spec):
    # a hazard in the crosswalk under the footprint's nose, while speeding there
    v = Verifier(Knowledge.of(spec, hazards=[Zone('cone', box(0.45, 3.6, 0.55, 3.7))]))
    r = check(v, straight(0.5, 3.4, math.pi / 2, 0.6))
    assert r.reason is VerifyReason.COLLISION and r.zone_id == 'cone' and r.hold


def test_the_first_rule_broken_in_time_is_reported(spec):
    v = Verifier(Knowledge.of(spec, hazards=[Zone('cone', box(0.45, 4.3, 0.55, 4.4))]))
    r = check(v, straight(0.5, 3.4, math.pi / 2, 0.6))
    assert r.reason is VerifyReason.LIMIT and r.time_s == 0.0
    r = check(v, straight(0.5, 3.4, math.pi / 2, 0.25, points=40))
    assert r.reason is VerifyReason.COLLISION and r.zone_id == 'cone'


# -- the deadline -------------------------------------------------------------------------------

def test_past_its_deadline_it_gives_up_with_timeout(spec):
    v = Verifier(Knowledge.of(spec), VerifierConfig(chunk_samples=8, deadline_s=0.05))
    r = v.check(straight(1.5, 1.0, 0.0, 0.5, points=40), HOLD, clock(step_ns=20_000_000))
    assert r.reason is VerifyReason.TIMEOUT and not r.safe
    assert r.elapsed_ns > 50_000_000


def test_an_answer_after_the_deadline_is_a_timeout(spec):
    readings = iter([0, 0] + [10**9] * 100)     # start, one chunk; late only when answering
    v = Verifier(Knowledge.of(spec), VerifierConfig(chunk_samples=10_000))
    r = v.check(straight(1.5, 1.0, 0.0, 0.5), HOLD, lambda: next(readings))
    assert r.reason is VerifyReason.TIMEOUT


def test_a_failing_clock_fails_closed(verifier):
    def broken():
        raise RuntimeError('no time')
    r = verifier.check(straight(1.5, 1.0, 0.0, 0.5), HOLD, broken)
    assert r.reason is VerifyReason.MALFORMED and not r.safe and 'clock' in r.detail


def test_within_the_deadline_on_a_real_clock(verifier):
    import time
    r = verifier.check(straight(1.5, 1.0, 0.0, 0.5, points=100), HOLD, time.monotonic_ns)
    assert r.safe and 0 < r.elapsed_ns


# -- malformed input ----------------------------------------------------------------------------

GOOD = straight(1.5, 1.0, 0.0, 0.5)


@pytest.mark.parametrize('proposal,hold,words', [
    (remade(GOOD, states=np.where(np.arange(100).reshape(20, 5) == 7, np.nan,
                                  GOOD.states)), HOLD, 'not finite'),
    (remade(GOOD, command=(math.inf, 0.0)), HOLD, 'not finite'),
    (remade(GOOD, t_ns=GOOD.t_ns[::-1].copy()), HOLD, 'must be 0'),
    (remade(GOOD, t_ns=np.concatenate(([0], GOOD.t_ns[1:] * 0 + 5))), HOLD, 'increasing'),
    (remade(GOOD, t_ns=np.zeros(0, np.int64), states=np.zeros((0, 5))), HOLD, 'no points'),
    (remade(GOOD, t_ns=GOOD.t_ns[:5]), HOLD, 'shape'),
    (remade(GOOD, command=(0.2, 0.0)), HOLD, 'first twist'),
    (remade(GOOD, states=GOOD.states + [0, 0.5, 0, 0, 0] * (np.arange(20) > 10)[:, None]),
     HOLD, 'leads'),
    (remade(GOOD, t_ns=GOOD.t_ns * 100, states=GOOD.states), HOLD, 'horizon'),
    (GOOD, 0.0, 'hold_s'),
    (GOOD, math.nan, 'hold_s'),
    (GOOD, 5.0, 'hold_s'),
    (dataclasses.replace(GOOD, frame_id='odom'), HOLD, 'frame_id'),
])
def test_malformed_input_is_not_safe(verifier, proposal, hold, words):
    r = verifier.check(proposal, hold, clock())
    assert r.reason is VerifyReason.MALFORMED and not r.safe
    assert words in r.detail


def test_too_much_work_is_refused_up_front(spec):
    v = Verifier(Knowledge.of(spec), VerifierConfig(max_samples=50))
    r = check(v, straight(1.5, 1.0, 0.0, 0.5, points=40))
    assert r.reason is VerifyReason.MALFORMED and 'max_samples' in r.detail


def test_something_that_is_not_a_proposal_is_malformed(verifier):
    r = verifier.check(object(), HOLD, clock())
    assert r.reason is VerifyReason.MALFORMED and r.digest == ''


@pytest.mark.parametrize('field,value', [('resolution', 0.0), ('deadline_s', -1.0),
                                         ('incident_margin', math.nan), ('chunk_samples', 2.5),
                                         ('max_points', True)])
def test_a_bad_config_names_its_field(field, value):
    with pytest.raises(ValueError, match=field):
        VerifierConfig(**{field: value})


def test_a_verification_cannot_be_safe_for_an_unsafe_reason():
    with pytest.raises(ValueError, match='safe'):
        Verification('d', True, VerifyReason.COLLISION, 0.0, 0.0, 0.0, 0)


def test_knowledge_validates_its_zones(spec):
    with pytest.raises(ValueError, match='obstacles'):
        dataclasses.replace(Knowledge.of(spec), obstacles=(Polygon([(0, 0), (1, 0), (1, 1)]),))


# -- soundness and independence -----------------------------------------------------------------

def test_safe_means_no_contact_even_between_its_samples(spec):
    """Random arcs near a field of thin hazards: whenever the verifier says SAFE, the footprint
    placed every millimetre along the exact motion touches nothing."""
    rng = np.random.default_rng(12)
    hazards = [Zone(f'h{i}', box(x, y, x + rng.uniform(0.01, 0.1), y + rng.uniform(0.01, 0.1)))
               for i, (x, y) in enumerate(rng.uniform([2, 1], [10, 7], size=(60, 2)))]
    config = VerifierConfig(resolution=0.05)
    v = Verifier(Knowledge.of(spec, hazards=hazards), config)
    union = shapely.union_all([z.polygon for z in v.knowledge.obstacles + v.knowledge.keep_out])
    safe = 0
    for _ in range(60):
        x, y = rng.uniform([2, 1], [10, 7])
        w = rng.uniform(-1.0, 1.0)
        p = straight(x, y, rng.uniform(-np.pi, np.pi), rng.uniform(0.2, 0.9), points=15, w=w)
        r = check(v, p)
        if r.reason is not VerifyReason.SAFE:
            continue
        safe += 1
        t = np.arange(0.0, 1.4 + 1e-9, 0.001)
        poses = advance(np.tile(p.states[0, :3], (len(t), 1)),
                        np.tile(p.states[0, 3:], (len(t), 1)), t)
        for px, py, yaw in poses[::5]:
            body = affinity.translate(affinity.rotate(spec.footprint, yaw, origin=(0, 0),
                                                      use_radians=True), px, py)
            assert not body.intersects(union)
    assert safe >= 10


def test_the_verifier_shares_no_code_with_the_oracle_sweep():
    tree = ast.parse(SRC.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & {'flywheel.oracle.oracle', 'flywheel.oracle.sweep'}
