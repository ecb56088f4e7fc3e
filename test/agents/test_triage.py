"""Triage ordering: severity, recurrence and proximity; clusters by place and by the kind of
correction they call for."""
import math

from flywheel.agents.triage import Family, ItemKind, triage
from flywheel.agents.work import Signal, WorkItem
from flywheel.verify.verifier import VerifyReason
from test.agents.conftest import flaw


def incident(ident, x, y, severity='COLLISION'):
    return {'incident_id': ident, 'severity': severity, 'x': x, 'y': y, 'distance': 0.05}


def test_a_collision_outranks_a_near_miss():
    queue = triage([incident('near', 2.0, 2.0, 'NEAR_MISS'), incident('hit', 8.0, 6.0)])
    assert [q.members[0].ident for q in queue] == ['hit', 'near']
    assert [q.rank for q in queue] == [1, 2]


def test_recurrence_outranks_a_single_worse_item():
    queue = triage([incident(f'n{i}', 2.0 + 0.1 * i, 2.0, 'NEAR_MISS') for i in range(4)]
                   + [incident('hit', 8.0, 6.0)])
    assert queue[0].recurrence == 4 and queue[0].severity == 2.0     # 2 * (1 + 2) > 3
    assert queue[1].members[0].ident == 'hit'


def test_nearer_where_the_robot_operates_ranks_first():
    items = [incident('far', 10.0, 7.0), incident('close', 2.0, 1.0)]
    queue = triage(items, near=[(1.5, 1.0)])
    assert [q.members[0].ident for q in queue] == ['close', 'far']
    assert queue[0].proximity > queue[1].proximity


def test_items_within_the_radius_are_one_region():
    flaws = [flaw('a', 1.0, 1.0, 3.0, 3.0), flaw('b', 1.0, 1.0, 3.5, 3.0),
             flaw('c', 1.0, 1.0, 5.0, 3.0)]
    queue = triage(flaws=flaws)
    assert sorted(q.recurrence for q in queue) == [1, 2]
    big = next(q for q in queue if q.recurrence == 2)
    assert (big.x, big.y) == (3.25, 3.0)
    assert {m.kind for m in big.members} == {ItemKind.FLAW}


def test_limit_flaws_are_their_own_family():
    queue = triage(flaws=[flaw('a', 1.0, 1.0, 3.0, 3.0),
                          flaw('b', 1.0, 1.0, 3.1, 3.0, reason=VerifyReason.LIMIT, limit=0.2)])
    assert {q.family for q in queue} == {Family.KEEP_OUT, Family.SPEED}


def test_info_incidents_are_no_work_and_unlocated_work_is_for_review():
    work = WorkItem(Signal.ESCALATION_RATE, 'all', 0.3, 0.1, 30)
    queue = triage([incident('i', 1.0, 1.0, 'INFO')], work=[work])
    assert len(queue) == 1 and queue[0].family is Family.REVIEW
    assert math.isnan(queue[0].x)


def test_the_same_input_gives_the_same_queue():
    items = [incident(f'i{i}', (i * 37) % 11, (i * 17) % 7) for i in range(12)]
    a = [(q.score, q.x, q.y) for q in triage(items)]
    b = [(q.score, q.x, q.y) for q in triage(list(reversed(items)))]
    assert a == b
