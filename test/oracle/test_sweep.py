"""The swept region contains the true motion: between samples, while turning (either way, by any
angle), during the held command from any start within the anchor tolerances, and after a DEGRADE.
The two hypothesis properties check it against dense sampling with the exact footprint polygon."""
import dataclasses
import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings, strategies as st
from shapely.geometry import Polygon

from flywheel.kinematics import step
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.sweep import MAX_SUBARCS, Footprint, subdivide, sweep
from flywheel.proposal import ProposalLimits, check_proposal, make_proposal
from test.helpers import straight

SQUARE = Footprint.of(Polygon([(-0.1, -0.1), (0.1, -0.1), (0.1, 0.1), (-0.1, 0.1)]))
LONG = Footprint.of(Polygon([(-0.05, -0.05), (1.0, -0.05), (1.0, 0.05), (-0.05, 0.05)]))
TOL = 0.01


def one_segment(pose, twist, duration, footprint, margin=0.0, tolerance=TOL):
    """The sweep of one segment from ``pose`` holding ``twist``, ending where it leads."""
    end = step(*pose, *twist, duration)
    return sweep(np.array([pose, end]), np.array([twist, (0.0, 0.0)]),
                 np.array([duration, 0.0]), np.zeros(2), np.full(2, margin), np.array([0]),
                 footprint, tolerance)


def placed(polygon: Polygon, poses) -> np.ndarray:
    """The exact polygon at each (x, y, yaw) pose, as shapely Polygons."""
    xy = np.asarray(polygon.exterior.coords)
    out = []
    for x, y, yaw in poses:
        c, s = math.cos(yaw), math.sin(yaw)
        out.append(np.column_stack([x + c * xy[:, 0] - s * xy[:, 1],
                                    y + s * xy[:, 0] + c * xy[:, 1]]))
    return shapely.polygons(np.array(out))


def covered(region_hulls, footprints) -> bool:
    """Every footprint inside the union of the hulls, up to float noise."""
    return bool(shapely.covered_by(footprints,
                                   shapely.union_all(region_hulls).buffer(1e-9)).all())


def test_footprint_is_placed_and_rotated():
    corners = SQUARE.place(np.array([[1.0, 2.0, math.pi / 2]]), np.zeros(1))
    assert np.allclose(corners[0, 0], 1.0 + 2.0j + 1j * (-0.1 - 0.1j))


@pytest.mark.parametrize('polygon', [
    Polygon([(-0.25, -0.2), (0.3, -0.2), (0.3, 0.2), (-0.25, 0.2)]),
    Polygon([(-0.2, -0.3), (0.5, 0.0), (-0.2, 0.3)]),
    Polygon([(0.3, 0.0), (0.1, 0.25), (-0.2, 0.15), (-0.25, -0.1), (0.05, -0.3)])])
def test_the_mitred_offset_contains_the_buffer_and_keeps_its_vertices(polygon):
    footprint = Footprint.of(polygon)
    mitred = Polygon(np.column_stack([(footprint.corners + 0.05 * footprint.mitre).real,
                                      (footprint.corners + 0.05 * footprint.mitre).imag]))
    assert mitred.buffer(1e-12).contains(polygon.buffer(0.05))
    assert len(mitred.exterior.coords) == len(polygon.exterior.coords)
    assert footprint.radius == pytest.approx(max(math.hypot(*p) for p in polygon.exterior.coords))


def test_a_segment_is_covered_between_two_distant_samples():
    swept = one_segment((0.0, 0.0, 0.0), (2.0, 0.0), 1.0, SQUARE)
    assert len(swept.hulls) == 1
    assert swept.hulls[0].contains(shapely.Point(1.0, 0.05))
    assert swept.hulls[0].area == pytest.approx((2.2 + 2 * TOL) * (0.2 + 2 * TOL))


def test_a_robot_standing_still_sweeps_its_inflated_footprint():
    swept = one_segment((1.0, 1.0, 0.0), (0.0, 0.0), 0.4, SQUARE, margin=0.04)
    assert swept.hulls[0].normalize().equals(shapely.box(0.85, 0.85, 1.15, 1.15).normalize())


def test_large_turns_are_subdivided_until_the_chord_error_is_within_tolerance():
    n, chord = subdivide(np.array([[0.5, 1.6], [0.0, math.pi]]), np.array([1.0, 0.5]),
                         LONG.radius, TOL)
    assert (n > 1).all() and (chord <= TOL).all()
    # one sub-arc fewer would not do
    assert ((0.5 + 1.6 * LONG.radius) * 1.6 / 8 / (n[0] - 1) ** 2 > TOL)


def test_an_absurd_twist_is_capped_and_inflated_by_its_actual_bound():
    n, chord = subdivide(np.array([[1e6, 1e3]]), np.array([0.5]), 0.36, TOL)
    assert n[0] == MAX_SUBARCS and chord[0] > TOL
    swept = one_segment((0.0, 0.0, 0.0), (3.0, 400.0), 0.5, SQUARE)
    assert len(swept.hulls) == MAX_SUBARCS


def test_the_turn_direction_comes_from_w_not_from_the_wrapped_yaw_difference():
    # From yaw 3.0 to yaw -3.0: clockwise (w < 0) is the long way, through yaw 0, where the tip
    # of a long body points along +x; counter-clockwise is the short way, through yaw pi.
    tip_at_zero = shapely.Point(0.9, 0.0)
    long_way = one_segment((0.0, 0.0, 3.0), (0.0, -1.0), 6.0, LONG)
    short_way = one_segment((0.0, 0.0, 3.0), (0.0, 1.0), 2 * math.pi - 6.0, LONG)
    assert shapely.union_all(long_way.hulls).contains(tip_at_zero)
    assert not shapely.union_all(short_way.hulls).contains(tip_at_zero)


def test_a_rotating_long_robot_sweeps_its_arc_exactly_enough():
    swept = one_segment((0.0, 0.0, 0.0), (0.0, 1.0), math.pi / 2, LONG)
    union = shapely.union_all(swept.hulls)
    tips = [shapely.Point(math.cos(a), math.sin(a)) for a in np.linspace(0, math.pi / 2, 50)]
    assert all(union.covers(t) for t in tips)
    # conservative but not loose: nowhere more than a few tolerances from the true swept area
    exact = shapely.union_all(placed(Polygon([(-0.05, -0.05), (1.0, -0.05), (1.0, 0.05),
                                              (-0.05, 0.05)]),
                                     [(0.0, 0.0, a) for a in np.linspace(0, math.pi / 2, 500)]))
    assert union.difference(exact.buffer(2.5 * TOL)).area < 1e-12


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits())


@settings(max_examples=150, deadline=None)
@given(x=st.floats(2.0, 10.0), y=st.floats(2.0, 6.0), yaw=st.floats(-math.pi, math.pi),
       v=st.floats(-1.0, 1.0), w=st.floats(-1.6, 1.6),
       offset=st.tuples(st.floats(0.0, 1.0), st.floats(-math.pi, math.pi), st.floats(-1.0, 1.0)),
       hold=st.floats(0.0, 1.0), k=st.floats(0.0, 1.0, exclude_min=True))
def test_the_held_command_from_any_anchored_start_lies_in_the_hold_sweep(
        oracle, spec, x, y, yaw, v, w, offset, hold, k):
    """Property (a): command (v, w) within the spec's limits, the robot anywhere within the anchor
    tolerances of the first pose, held for any T <= command_hold, degraded by any k in (0, 1]."""
    p = straight(x, y, yaw, v, points=5, w=w)
    swept = oracle.swept(p)
    hold_hulls = swept.hulls[swept.segment == len(p.states)]
    r, bearing, dyaw = offset
    start = (x + r * spec.anchor_tolerance * math.cos(bearing),
             y + r * spec.anchor_tolerance * math.sin(bearing),
             yaw + dyaw * spec.anchor_yaw_tolerance)
    poses = [step(*start, k * v, k * w, t)
             for t in np.linspace(0.0, hold * spec.command_hold, 40)]
    assert covered(hold_hulls, placed(spec.footprint, poses))


@st.composite
def consistent_trajectories(draw, limits):
    """Random trajectories within the kinematic tolerances, turns of up to 6.5 rad per segment."""
    n = draw(st.integers(2, 6))
    pose = (draw(st.floats(2.0, 10.0)), draw(st.floats(2.0, 6.0)),
            draw(st.floats(-math.pi, math.pi)))
    dts = [draw(st.floats(0.05, limits.max_sample_gap - 1e-3)) for _ in range(n - 1)]
    twists = [(draw(st.floats(-1.0, 1.0)), draw(st.floats(-13.0, 13.0))) for _ in range(n)]
    states = [(*pose, *twists[0])]
    for i, dt in enumerate(dts):
        x, y, yaw = step(*states[-1][:3], *twists[i], dt)
        # the next pose anywhere within the tolerances of where the twist leads
        r, bearing, dyaw = draw(st.floats(0, 0.99)), draw(st.floats(-math.pi, math.pi)), \
            draw(st.floats(-0.99, 0.99))
        states.append((x + r * limits.kinematic_tolerance * math.cos(bearing),
                       y + r * limits.kinematic_tolerance * math.sin(bearing),
                       yaw + dyaw * limits.kinematic_yaw_tolerance, *twists[i + 1]))
    t_ns = np.round(np.concatenate([[0.0], np.cumsum(dts)]) * 1e9).astype(np.int64)
    return make_proposal('proposer/1', 'proposer', 1, 'map', 0, t_ns, states, twists[0])


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_placement_along_every_twist_arc_lies_in_the_trajectory_sweep(oracle, spec, data):
    """Property (b): for consistent trajectories, including turns over 180 degrees in one segment,
    the footprint along each arc (twist i from pose i) lies in the trajectory's swept region."""
    p = data.draw(consistent_trajectories(oracle.limits))
    assert check_proposal(p, dataclasses.replace(oracle.limits, min_horizon=0.0)) == []
    swept = oracle.swept(p)
    trajectory_hulls = swept.hulls[swept.segment < len(p.states) - 1]
    poses = [p.states[-1, :3]]
    for i, dt in enumerate(np.diff(p.times)):
        poses += [step(*p.states[i, :3], *p.states[i, 3:], t) for t in np.linspace(0, dt, 60)]
    assert covered(trajectory_hulls, placed(spec.footprint, poses))
