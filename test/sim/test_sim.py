"""The sim judges against the true world: contact is a collision and never a penetration."""

import pytest

from flywheel.errors import SpecError
from flywheel.kinematics import RobotState
from flywheel.sim.sim import EventKind, Sim
from flywheel.sim.world import load_world, parse_world
from test.conftest import CONFIG

MS = 1_000_000


@pytest.fixture
def sim():
    return Sim(load_world(CONFIG / 'world.yaml'), episode_gap=1.0)


def drive(sim, v, w, seconds, dt=0.02, start_ns=0):
    events = []
    for k in range(int(round(seconds / dt))):
        events += sim.step(v, w, dt, start_ns + int(k * dt * 1e9))
    return events


def test_free_driving_follows_the_unicycle(sim):
    assert drive(sim, 0.5, 0.0, 1.0) == []
    assert sim.state.x == pytest.approx(2.0) and sim.state.y == pytest.approx(1.0)


def test_driving_into_a_shelf_is_one_collision_and_no_penetration(sim):
    sim.state = RobotState(3.0, 4.0, 0.0)
    events = drive(sim, 0.5, 0.0, 4.0)
    collisions = [e for e in events if e.kind is EventKind.COLLISION]
    assert [e.object_id for e in collisions] == ['shelf_a']
    assert sim.state.x + 0.3 <= 4.0                 # the front never passes the shelf face
    assert sim.state.v == 0.0


def test_a_new_episode_after_the_gap(sim):
    sim.state = RobotState(3.69, 4.0, 0.0)
    first = drive(sim, 0.5, 0.0, 0.1)
    again = drive(sim, 0.5, 0.0, 0.1, start_ns=int(1.5e9))
    assert len([e for e in first + again if e.kind is EventKind.COLLISION]) == 2


def test_passing_close_is_a_near_miss(sim):
    sim.state = RobotState(3.0, 2.25, 0.0)          # body top at 2.45, shelf_a bottom at 2.5
    events = drive(sim, 0.5, 0.0, 4.0)
    assert [(e.kind, e.object_id) for e in events] == [(EventKind.NEAR_MISS, 'shelf_a')]
    assert 0.05 - 1e-9 <= events[0].distance < 0.1     # first seen at the corner, on approach


def test_the_hidden_pallet_is_real(sim):
    sim.state = RobotState(10.6, 7.6, 0.0)
    assert any(e.object_id == 'stray_pallet' for e in drive(sim, 0.5, 0.0, 1.0))


@pytest.mark.parametrize('change, field', [
    (dict(start=[0, 0]), 'start'), (dict(near_miss_distance=-1), 'near_miss_distance'),
    (dict(footprint=[[1, 1], [2, 1], [2, 2]]), 'footprint'), (dict(extra=1), 'world.extra')])
def test_malformed_world_names_the_field(change, field):
    import yaml
    doc = {**yaml.safe_load((CONFIG / 'world.yaml').read_text()), **change}
    with pytest.raises(SpecError) as err:
        parse_world(doc)
    assert err.value.field == field
