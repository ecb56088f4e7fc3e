"""The Proposal digest and the well-formedness checks shared by the Oracle and the Gate."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from flywheel.proposal import Defect, ProposalLimits, check_proposal, make_proposal
from test.helpers import straight

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
    (dict(command_tolerance=-1), 'command_tolerance')])
def test_limits_validate_on_construction(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ProposalLimits(**kwargs)
