"""The story's staging (flywheel/story.py), checked without ROS: the world holds the hazard and no
Oracle release does, the seeded first fault is the SHORTCUT that drives past it, the pass is a
near-miss and never a contact, the nominal route keeps clear of it, and the figures count what
the module says they count."""
import dataclasses
import math

import pytest
import yaml
from shapely.geometry import LineString, Polygon

from flywheel.oracle.spec import load_spec
from flywheel.proposer.faults import Fault, FaultConfig, FaultInjector
from flywheel.sim.sim import EventKind, Sim
from flywheel.sim.world import parse_world
from flywheel.story import (FAULT_KINDS, FAULT_MAX_DURATION, FAULT_MIN_DURATION, FAULT_RATE,
                            FAULT_SEED, HAZARD, HAZARD_ID, ROUTE, START, Timeline, figures,
                            replay, story_world)
from test.conftest import CONFIG


@pytest.fixture(scope='module')
def world():
    return parse_world(story_world(yaml.safe_load((CONFIG / 'world.yaml').read_text())))


def test_the_world_holds_the_hazard_and_release_1_does_not(world):
    assert HAZARD_ID in dict(world.obstacles)
    spec = load_spec(CONFIG / 'oracle_spec.yaml')
    known = [z.polygon for z in spec.obstacles + spec.keep_out]
    assert not any(z.intersects(Polygon(HAZARD)) for z in known)


def test_a_world_that_has_it_already_is_refused():
    doc = story_world(yaml.safe_load((CONFIG / 'world.yaml').read_text()))
    with pytest.raises(ValueError, match=HAZARD_ID):
        story_world(doc)


def test_the_seeded_first_proposal_starts_a_long_shortcut():
    faults = FaultInjector(FaultConfig(rate=FAULT_RATE, seed=FAULT_SEED, kinds=FAULT_KINDS,
                                       min_duration=FAULT_MIN_DURATION,
                                       max_duration=FAULT_MAX_DURATION))
    assert faults.current(0.0) is Fault.SHORTCUT
    # about 3 s of motion pass the pallet; the rest is room for the Gate to hear the Proposer
    assert faults.current(9.0) is Fault.SHORTCUT


def test_the_shortcut_passes_the_hazard_as_a_near_miss_never_a_contact(world):
    """Straight from the start pose at cruise speed (the SHORTCUT's target is straight ahead),
    as long as the episode may last."""
    sim = Sim(world)
    events = [e for k in range(300) for e in sim.step(0.6, 0.0, 0.02, k * 20_000_000)]
    assert [(e.kind, e.object_id) for e in events] == [(EventKind.NEAR_MISS, HAZARD_ID)]


def test_the_nominal_route_keeps_clear_of_the_hazard():
    route = [ROUTE[i:i + 2] for i in range(0, len(ROUTE), 2)]
    loop = LineString(route + route[:1])
    # the footprint's half width, the near-miss distance, the refiner's zone around an incident
    # (0.3 m region + 0.1 m margin) and the Oracle's clearance margin fit between them
    assert loop.distance(Polygon(HAZARD)) > 0.2 + 0.1 + 0.4 + 0.25
    assert math.isclose(START[2], math.atan2(1.0 - START[1], 2.0 - START[0]), abs_tol=0.01)


def test_figures_count_hazard_incidents_before_and_after_full():
    t = Timeline()
    t.incident(2.0, 'near_miss', HAZARD_ID, 3.4, 5.6)
    t.incident(3.0, 'collision', 'shelf_a', 4.0, 3.0)
    t.incident(50.0, 'near_miss', HAZARD_ID, 3.4, 5.6)
    t.full_t = 30.0
    t.proposer_epochs.add(7)
    f = figures(t, 90.0, {'basin': {'kept': 10, 'size': 10, 'first_version': '1.0.0'}}, 42, 42)
    assert f['first_incident_to_full_s'] == 28.0
    assert (f['hazard_incidents_before'], f['hazard_incidents_per_min_before']) == (1, 2.0)
    assert (f['hazard_incidents_after'], f['hazard_incidents_per_min_after']) == (1, 1.0)
    assert f['incidents_total'] == 3 and f['basin_kept'] == 10 and f['proposer_restarts'] == 0


def test_a_second_proposer_epoch_is_a_restart_and_no_full_has_no_after():
    t = Timeline()
    t.proposer_epochs.update({1, 2})
    f = figures(t, 60.0, None, 42, None)
    assert f['proposer_restarts'] == 1 and f['full_rollout_s'] is None
    assert f['hazard_incidents_after'] == 0 and f['hazard_incidents_per_min_after'] is None


def test_rebasing_moves_every_time():
    t = Timeline()
    t.add(5.0, 'note', 'x')
    t.incident(6.0, 'near_miss', HAZARD_ID, 0.0, 0.0)
    t.shift(4.0)
    assert [e.t for e in t.entries] == [1.0, 2.0] and t.incidents[0][0] == 2.0


def test_replay_judges_the_pass_under_each_release(spec, policy):
    """The pass (cruise speed from the start pose, straight at the goal) as release 1 decides it
    and as a release with a keep-out zone over the pallet's side of the aisle decides it."""
    from flywheel.agents.judge import Judge
    from flywheel.oracle.spec import Zone
    from test.helpers import straight
    pass_ = [straight(*START, 0.6, seq=k) for k in range(1, 4)]
    zone = Zone('fw-0001-g0', Polygon(HAZARD).buffer(0.4), math.inf)
    fixed = dataclasses.replace(spec, version='1.0.1', keep_out=spec.keep_out + (zone,))
    assert replay(pass_, {'1.0.0': Judge(spec, policy), '1.0.1': Judge(fixed, policy)}) == {
        'proposals': 3, 'approved_by_1.0.0': 3, 'approved_by_1.0.1': 0}
