"""The lifecycle manager's bond: a late or lost get_state answer is not a lost node; silence
longer than the timeout, or any state but active, is."""
from __future__ import annotations

from flywheel.bond import Bond

S = 1_000_000_000


def bond(timeout_s: float = 4.0) -> Bond:
    b = Bond(('oracle', 'gate'), int(timeout_s * S))
    b.start(0)
    return b


def test_answers_within_the_timeout_keep_every_node():
    b = bond()
    for t in range(1, 20):
        assert b.answer('oracle', 'active', t * S) is None
        assert b.answer('gate', 'active', t * S) is None
        assert b.overdue(t * S) is None


def test_answers_lost_for_less_than_the_timeout_are_forgiven():
    b = bond()
    b.answer('oracle', 'active', 1 * S)
    b.answer('gate', 'active', 1 * S)
    # three questions to the Gate lost (periods 2, 3, 4), the fourth answered
    b.answer('oracle', 'active', 4 * S)
    assert b.overdue(int(4.9 * S)) is None
    b.answer('gate', 'active', int(4.9 * S))
    assert b.overdue(8 * S) is None


def test_silence_longer_than_the_timeout_ends_the_graph_naming_the_node():
    b = bond()
    b.answer('oracle', 'active', 1 * S)
    b.answer('gate', 'active', 3 * S)
    assert b.overdue(5 * S) is None
    why = b.overdue(int(5.1 * S))
    assert why is not None and why.startswith('oracle has not answered') and '4.1 s' in why


def test_a_node_never_heard_after_the_start_is_overdue_after_the_timeout():
    b = bond(1.0)
    assert b.overdue(1 * S) is None
    assert b.overdue(int(1.01 * S)).startswith('oracle')


def test_any_state_but_active_ends_it_at_once():
    for state in ('inactive', 'unconfigured', 'finalized', 'deactivating', ''):
        assert bond().answer('gate', state, 1) == f'gate is {state}'


def test_an_old_answer_processed_late_does_not_move_the_node_back():
    b = bond()
    b.answer('oracle', 'active', 3 * S)
    b.answer('oracle', 'active', 2 * S)     # a slower, older question's answer
    b.answer('gate', 'active', 6 * S)
    assert b.overdue(int(6.9 * S)) is None
