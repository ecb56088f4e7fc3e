"""The Proposal digest and the well-formedness checks shared by the Oracle and the Gate."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from flywheel.kinematics import RobotState
from flywheel.proposal import Defect, ProposalLimits, check_proposal, make_proposal
from flywheel.proposer.adapter import TwistAdapter
from flywheel.proposer.faults import Fault, FaultConfig, FaultInjector
from flywheel.proposer.proposer import Proposer
from flywheel.proposer.route import RoutePlanner
from test.helpers import driven, remade, straight

LIMITS = ProposalLimits('map', 50, ('proposer',))


def defects(p, limits=LIMITS):
    return {d for d, _ in check_proposal(p, limits)}


def test_digest_is_deterministic_across_objects():
    assert straight(1, 1, 0, 0.5).digest == straight(1, 1, 0, 0.5).digest


def test_digest_is_hex_sha256_of_canonical_bytes():
    import hashlib
    p = straight(1, 1, 0, 0.5)
    assert p.digest == hashlib.sha256(p.canonical_bytes()).hexdigest()


@pytest.mark.parametrize('change', [
    dict(x=1.0000001), dict(v=0.51), dict(seq=2), dict(stamp_ns=1), dict(proposer_id='other'),
    dict(frame_id='odom'), dict(w=0.01), dict(points=19)])
def test_digest_changes_when_any_field_changes(change):
    base = dict(x=1.0, y=1.0, yaw=0.0, v=0.5)
    kwargs = {k: change.pop(k) for k in list(change) if k in base}
    assert straight(**{**base, **kwargs}, **change).digest != straight(**base).digest


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.integers(0, 2**62))
def test_digest_separates_distinct_positions_and_stamps(x, y, stamp):
    a = straight(x, y, 0.0, 0.5, stamp_ns=stamp)
    b = straight(x, y, 0.0, 0.5, stamp_ns=stamp + 1)
    assert a.digest != b.digest


def test_a_well_formed_proposal_has_no_defect():
    assert defects(straight(1, 1, 0, 0.5)) == set()


def test_nan_in_a_state_is_non_finite():
    p = straight(1, 1, 0, 0.5)
    p.states[3, 1] = math.nan
    assert Defect.NON_FINITE in defects(p)


def test_inf_in_the_command_is_non_finite():
    p = straight(1, 1, 0, 0.5)
    p = make_proposal(p.proposal_id, p.proposer_id, p.seq, p.frame_id, p.stamp_ns, p.t_ns,
                      p.states, (math.inf, 0.0))
    assert Defect.NON_FINITE in defects(p)


def test_empty_trajectory():
    p = make_proposal('proposer/1', 'proposer', 1, 'map', 0, [], np.empty((0, 5)), (0.0, 0.0))
    assert defects(p) == {Defect.EMPTY_TRAJECTORY}


def test_non_monotonic_time():
    p = straight(1, 1, 0, 0.5)
    p.t_ns[5] = p.t_ns[4]
    assert Defect.NON_MONOTONIC_TIME in defects(p)


def test_negative_first_time():
    p = straight(1, 1, 0, 0.5)
    p.t_ns[0] = -1
    assert Defect.NON_MONOTONIC_TIME in defects(p)


def test_too_many_points():
    assert Defect.TOO_MANY_POINTS in defects(straight(1, 1, 0, 0.5, points=51))


def test_wrong_frame():
    assert defects(straight(1, 1, 0, 0.5, frame_id='odom')) == {Defect.WRONG_FRAME}


def test_unknown_proposer():
    assert defects(straight(1, 1, 0, 0.5, proposer_id='mallory')) == {Defect.UNKNOWN_PROPOSER}


def test_command_that_is_not_the_first_twist():
    p = straight(1, 1, 0, 0.5)
    p = make_proposal(p.proposal_id, p.proposer_id, p.seq, p.frame_id, p.stamp_ns, p.t_ns,
                      p.states, (0.9, 0.0))
    assert defects(p) == {Defect.COMMAND_MISMATCH}


def test_times_and_states_of_different_lengths():
    p = straight(1, 1, 0, 0.5)
    p = make_proposal(p.proposal_id, p.proposer_id, p.seq, p.frame_id, p.stamp_ns, p.t_ns[:-1],
                      p.states, p.command)
    assert Defect.SHAPE_MISMATCH in defects(p)


@pytest.mark.parametrize('kwargs, field', [
    (dict(frame_id=''), 'frame_id'), (dict(max_points=0), 'max_points'),
    (dict(allowed_proposers=()), 'allowed_proposers'),
    (dict(command_tolerance=-1), 'command_tolerance'), (dict(min_horizon=-0.1), 'min_horizon'),
    (dict(min_horizon=math.inf), 'min_horizon'), (dict(max_horizon=0.0), 'max_horizon'),
    (dict(min_horizon=2.0, max_horizon=1.0), 'max_horizon'),
    (dict(max_horizon=math.nan), 'max_horizon'), (dict(max_sample_gap=0.0), 'max_sample_gap'),
    (dict(max_sample_gap=math.inf), 'max_sample_gap'),
    (dict(kinematic_tolerance=-0.01), 'kinematic_tolerance'),
    (dict(kinematic_tolerance=math.nan), 'kinematic_tolerance'),
    (dict(kinematic_yaw_tolerance=4.0), 'kinematic_yaw_tolerance')])
def test_limits_validate_on_construction(kwargs, field):
    with pytest.raises(ValueError, match=f'{field}: .*{list(kwargs.values())[-1]}'):
        ProposalLimits(**kwargs)


# -- poses and twists agree, and the horizon covers what is held --------------------------------

def details(p, limits=LIMITS):
    return {d: detail for d, detail in check_proposal(p, limits)}


def test_standing_still_poses_with_forward_twists_are_a_kinematic_mismatch():
    # the case: poses standing 0.26 m from a shelf, twists of 0.79 m/s forward
    p = straight(3.44, 4.0, 0.0, 0.0, points=10)
    states = p.states.copy()
    states[:, 3] = 0.79
    found = details(remade(p, states=states, command=(0.79, 0.0)))
    assert set(found) == {Defect.KINEMATIC_MISMATCH}
    assert 'point 1 is 0.079 m' in found[Defect.KINEMATIC_MISMATCH]


def test_a_turn_the_poses_do_not_make_is_a_kinematic_mismatch():
    p = straight(1, 1, 0, 0.0, points=5, w=1.0)
    states = p.states.copy()
    states[3:, 2] = states[2, 2]               # the yaw stops turning after point 2
    found = details(remade(p, states=states))
    assert 'point 3 is 0 m and 0.1 rad from where twist 2 leads' in found[Defect.KINEMATIC_MISMATCH]


def test_poses_within_the_kinematic_tolerances_are_consistent():
    p = straight(1, 1, 0, 0.5, points=5, w=0.3)
    states = p.states.copy()
    states[1:, 0] += 0.0099
    states[1:, 2] -= 0.0099
    assert defects(remade(p, states=states)) == set()
    states[2, 0] += 0.02
    assert defects(remade(p, states=states)) == {Defect.KINEMATIC_MISMATCH}


def test_yaw_is_compared_wrapped():
    p = straight(1, 1, math.pi - 0.05, 0.5, points=5, w=1.0)      # crosses +-pi after 50 ms
    assert p.states[-1, 2] < 0 and defects(p) == set()


def test_the_first_time_must_be_zero():
    p = straight(1, 1, 0, 0.5)
    found = details(remade(p, t_ns=p.t_ns + 1))
    assert found == {Defect.NON_MONOTONIC_TIME: 'time_from_start[0]=1 ns, must be 0'}


def test_a_single_point_is_shorter_than_the_gate_holds_its_command():
    found = details(straight(1, 1, 0, 0.5, points=1), ProposalLimits(min_horizon=0.32))
    assert found == {Defect.HORIZON_TOO_SHORT: 'horizon 0 s at point 0 < min_horizon=0.32'}


def test_a_horizon_exactly_at_the_minimum_is_enough():
    assert defects(straight(1, 1, 0, 0.5, points=5), ProposalLimits(min_horizon=0.4)) == set()
    assert defects(straight(1, 1, 0, 0.5, points=4), ProposalLimits(min_horizon=0.4)) == {
        Defect.HORIZON_TOO_SHORT}


def test_times_68_years_apart_are_too_long_and_too_sparse():
    years_68 = 68 * 365 * 86400 * 10**9
    p = make_proposal('proposer/1', 'proposer', 1, 'map', 0, [0, years_68],
                      [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0]], (0.0, 0.0))
    found = details(p)
    assert set(found) == {Defect.HORIZON_TOO_LONG, Defect.SAMPLE_GAP}
    assert f'{years_68 * 1e-9:.9g} s from point 0 to 1' in found[Defect.SAMPLE_GAP]


def test_a_gap_between_two_points_over_the_limit_is_named():
    p = driven(1, 1, 0, [(0.5, 0.0)] * 4, [0.1, 0.6, 0.1])
    assert details(p) == {Defect.SAMPLE_GAP: '0.6 s from point 1 to 2 > max_sample_gap=0.5'}


def test_a_time_far_in_the_past_is_non_monotonic_without_overflow():
    p = straight(1, 1, 0, 0.5)
    t_ns = p.t_ns.copy()
    t_ns[5] = -(2**63)
    assert defects(remade(p, t_ns=t_ns)) == {Defect.NON_MONOTONIC_TIME}


# -- the built-in planners propose what these checks accept ------------------------------------

GATE = ProposalLimits(min_horizon=0.32)
ORACLE = ProposalLimits(min_horizon=0.4)
ROUTE = [[2.0, 1.0], [10.5, 1.0], [10.5, 7.0], [2.0, 7.0]]


@pytest.mark.parametrize('state', [RobotState(2.0, 1.0, 0.0), RobotState(10.3, 1.2, 0.3, 0.6),
                                   RobotState(5.0, 4.0, 3.0, 0.2), RobotState(10.5, 7.0, -2.0)])
@pytest.mark.parametrize('kinds', [(), ('SHORTCUT',)])
def test_the_route_planner_proposes_consistent_trajectories(state, kinds):
    faults = FaultInjector(FaultConfig(rate=1.0, kinds=kinds))
    p = Proposer('proposer', RoutePlanner(ROUTE), 'map', 0, faults).propose(state, 10**9)
    assert check_proposal(p, GATE) == [] and check_proposal(p, ORACLE) == []


@pytest.mark.parametrize('twist', [(0.0, 0.0), (0.5, 0.0), (0.4, -1.2), (-0.2, 0.5)])
def test_the_twist_adapter_proposes_consistent_trajectories(twist):
    adapter = TwistAdapter()
    adapter.twist = twist
    p = Proposer('proposer', adapter, 'map', 0).propose(RobotState(3.0, 3.0, 2.0), 10**9)
    assert check_proposal(p, ORACLE) == []


def test_overspeed_stays_consistent_so_that_it_is_caught_as_overspeed():
    faults = FaultInjector(FaultConfig(rate=1.0, kinds=('OVERSPEED',), overspeed_factor=2.5))
    proposer = Proposer('proposer', RoutePlanner(ROUTE), 'map', 0, faults)
    p = proposer.propose(RobotState(3.0, 1.0, 0.2, 0.6), 10**9)
    assert proposer.last_fault is Fault.OVERSPEED and p.command[0] > 1.0
    assert check_proposal(p, ORACLE) == []


def test_an_injected_nan_is_non_finite():
    faults = FaultInjector(FaultConfig(rate=1.0, kinds=('NAN',)))
    proposer = Proposer('proposer', RoutePlanner(ROUTE), 'map', 0, faults)
    p = proposer.propose(RobotState(3.0, 1.0, 0.2), 10**9)
    assert {d for d, _ in check_proposal(p, ORACLE)} == {Defect.NON_FINITE}
