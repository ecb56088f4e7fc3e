"""The regression suite a release carries: every case a well-formed proposal (or a schema error
naming it), and a candidate Oracle that approves a recorded collision or blocks a golden route is
caught."""
from __future__ import annotations

import pytest

from flywheel.enforcement.decision import Action, Reason
from flywheel.enforcement.policy import load_policy
from flywheel.errors import SpecError, SpecLimitError
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import parse_spec
from flywheel.proposal import ProposalLimits, check_proposal
from flywheel.release.regression import (MAX_CASES, SUITE_PROPOSER, Case, Expect,
                                         RegressionSuite, parse_suite, run_suite)
from flywheel.yamldoc import parse_yaml
from test.conftest import CONFIG

SHELF_A = '  - {id: shelf_a, polygon: [[4.0, 2.5], [5.0, 2.5], [5.0, 5.5], [4.0, 5.5]]}\n'
SUITE = """
golden:
  - {id: aisle_south, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
  - {id: aisle_north_bend, start: [2.0, 6.5, 0.0], dt: 0.1,
     twists: [[0.4, 0.0], [0.4, 0.0], [0.4, 0.2], [0.4, 0.2], [0.4, 0.2], [0.4, 0.0]]}
incidents:
  # 2026-11-02: drove head-on into shelf_a from the west aisle
  - {id: shelf_a_head_on, start: [3.0, 4.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
"""


def spec_from(text: str):
    return parse_spec(parse_yaml(text, 'oracle_spec.yaml'))


@pytest.fixture(scope='module')
def spec_text():
    return (CONFIG / 'oracle_spec.yaml').read_text()


@pytest.fixture(scope='module')
def policy():
    return load_policy(CONFIG / 'policy.yaml')


def oracle(spec, **limits) -> Oracle:
    return Oracle(spec, ProposalLimits(spec.frame_id, allowed_proposers=('proposer',), **limits))


def suite_of(spec, text: str = SUITE) -> RegressionSuite:
    return parse_suite(parse_yaml(text, 'regression.yaml'), spec)


def test_cases_become_kinematically_consistent_proposals(spec):
    suite = suite_of(spec)
    assert [c.id for c in suite.golden] == ['aisle_south', 'aisle_north_bend']
    assert [c.id for c in suite.incidents] == ['shelf_a_head_on']
    limits = ProposalLimits(allowed_proposers=(SUITE_PROPOSER,), min_horizon=spec.command_hold)
    for case in suite.cases:
        assert check_proposal(case.proposal(), limits) == []
    held = suite.cases[0].proposal()
    assert len(held.t_ns) == 20 and held.command == (0.5, 0.0)
    assert held.states[-1, 0] == pytest.approx(1.0 + 0.5 * 1.9)


def test_the_releases_own_spec_passes(spec, policy):
    result = run_suite(suite_of(spec), oracle(spec), policy)
    assert result.passed and result.failures == () and result.cases == 3


def test_a_candidate_that_approves_a_known_collision_is_caught(spec, spec_text, policy):
    """The candidate forgot shelf_a: the recorded incident is no longer blocked."""
    candidate = spec_from(spec_text.replace(SHELF_A, ''))
    result = run_suite(suite_of(spec), oracle(candidate), policy)
    assert not result.passed
    [failure] = result.failures
    assert (failure.case_id, failure.expected, failure.got) == ('shelf_a_head_on', 'blocked',
                                                                Action.ALLOW)
    assert str(failure).startswith('shelf_a_head_on: expected blocked, got ALLOW')


def test_a_candidate_that_blocks_a_golden_route_is_caught(spec, spec_text, policy):
    """The candidate lays a keep-out zone over the south aisle everyone drives."""
    zone = '  - {id: loading_strip, polygon: [[1.5, 0.5], [2.5, 0.5], [2.5, 1.5], [1.5, 1.5]]}\n'
    candidate = spec_from(spec_text.replace('keep_out:\n', 'keep_out:\n' + zone))
    result = run_suite(suite_of(spec), oracle(candidate), policy)
    [failure] = result.failures
    assert (failure.case_id, failure.expected) == ('aisle_south', 'allowed')
    assert failure.got >= Action.BLOCK and Reason.COLLISION_RISK in failure.reasons


def test_an_incident_the_oracle_rejects_as_input_fails_not_passes(spec, policy):
    """A BLOCK for INPUT_REJECTED says nothing about the candidate's judgement."""
    result = run_suite(suite_of(spec), oracle(spec, max_points=10), policy)
    failed = {f.case_id: f for f in result.failures}
    assert set(failed) == {'aisle_south', 'shelf_a_head_on'}
    assert 'not scored' in failed['shelf_a_head_on'].detail


def test_an_evaluation_that_raises_fails_the_case(spec, policy, monkeypatch):
    broken = oracle(spec)
    monkeypatch.setattr(broken, 'evaluate', lambda p: 1 / 0)
    result = run_suite(suite_of(spec), broken, policy)
    assert len(result.failures) == 3 and result.failures[0].got is Action.FALLBACK
    assert 'ZeroDivisionError' in result.failures[0].detail


CASE = "{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}"


@pytest.mark.parametrize('text, field, problem', [
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 2, dt: 0.1}]',
     'regression.golden[0]', 'horizon_too_short'),
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.6}]',
     'regression.golden[0].dt', 'must be in'),
    ('incidents: [{id: c, start: [1.0, 1.0], twist: [0.5, 0.0], points: 20, dt: 0.1}]',
     'regression.incidents[0].start', 'expected 3 numbers'),
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], dt: 0.1}]', 'regression.golden[0]',
     'either twists'),
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], twists: [[0.5, 0.0]], '
     'points: 5, dt: 0.1}]', 'regression.golden[0]', 'either twists'),
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], twists: [[0.5, 0.0]], points: 5, dt: 0.1}]',
     'regression.golden[0].points', 'single held twist'),
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 201, dt: 0.01}]',
     'regression.golden[0].points', 'must be in'),
    ('golden: [{id: c, start: [1.0, .nan, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}]',
     'regression.golden[0].start[1]', 'finite'),
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, "x"], points: 20, dt: 0.1}]',
     'regression.golden[0].twist[1]', 'expected a number'),
    (f'golden: [{CASE}]\nincidents: [{CASE}]', 'regression.incidents[0].id', 'duplicate'),
    ('golden: []', 'regression', 'no case'),
    ('golden: [{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1, '
     'expect: allowed}]', 'regression.golden[0].expect', 'unknown key'),
    ('smoke: []', 'regression.smoke', 'unknown key'),
])
def test_a_malformed_case_is_a_schema_error_naming_it(spec, text, field, problem):
    with pytest.raises(SpecError) as caught:
        parse_suite(parse_yaml(text, 'regression.yaml'), spec)
    assert caught.value.field == field and problem in caught.value.problem


def test_cases_are_checked_and_run_in_the_specs_frame(spec_text, policy):
    odom = spec_from(spec_text.replace('frame_id: map', 'frame_id: odom'))
    suite = suite_of(odom, f'golden: [{CASE}]')
    assert run_suite(suite, oracle(odom), policy).passed


def test_the_suite_is_bounded(spec):
    many = 'golden:\n' + ''.join(
        f'  - {{id: c{i}, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 5, dt: 0.1}}\n'
        for i in range(MAX_CASES + 1))
    with pytest.raises(SpecLimitError, match=f'more than {MAX_CASES} cases'):
        parse_suite(parse_yaml(many, 'regression.yaml'), spec)


def test_cases_validate_on_construction():
    with pytest.raises(ValueError, match='dt'):
        Case('c', Expect.ALLOWED, (1.0, 1.0, 0.0), ((0.5, 0.0),) * 5, 0.0)
    with pytest.raises(ValueError, match='duplicate'):
        case = Case('c', Expect.ALLOWED, (1.0, 1.0, 0.0), ((0.5, 0.0),) * 5, 0.1)
        RegressionSuite((case, case))
