"""Staged rollout without ROS: the plan and its schema, the stage analysis (one test per
condition), the state machine (one test per transition), its store form, and its safety invariants
as properties over random sequences of outcomes, operator requests and restarts."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.enforcement.decision import Action, Reason
from flywheel.errors import RolloutError, SpecError
from flywheel.release import bundle
from flywheel.release.rollout import (DEFAULT_PLAN, IMMEDIATE, MAX_NUMBER, Ended, EventKind,
                                      Observation, Outcome, OutcomeKind, Rollout, RolloutPlan,
                                      Stage, StageAnalysis, StageRule, canary_members,
                                      load_default_plan, parse_plan, rollout_message)
from test.conftest import CONFIG

S = 10**9
T0 = 1_800_000_000 * S       # wall clock ns, fixed once
A, D, E, B, F = Action.ALLOW, Action.DEGRADE, Action.ESCALATE, Action.BLOCK, Action.FALLBACK

RULE = StageRule(min_duration_s=10.0, min_samples=100, max_duration_s=60.0,
                 max_disagreement_rate=0.05, max_false_stop_rate=0.05, max_latency_p99_s=0.05)
PLAN = RolloutPlan((Stage.SHADOW, Stage.CANARY, Stage.FULL), (RULE, RULE))


def plan_doc(**changes) -> dict:
    doc = DEFAULT_PLAN.to_doc()
    doc.update(changes)
    return doc


def rule_doc(**changes) -> dict:
    rules = DEFAULT_PLAN.to_doc()['rules']
    rules['shadow'].update(changes)
    return plan_doc(rules=rules)


# -- the plan ---------------------------------------------------------------------------------

def test_the_default_plan_in_config_is_the_built_in_one():
    plan = load_default_plan(CONFIG / 'rollout.yaml')
    assert plan == DEFAULT_PLAN
    assert plan.stages == (Stage.SHADOW, Stage.CANARY, Stage.FULL) and plan.canary_robots == 1
    for stage in (Stage.SHADOW, Stage.CANARY):
        rule = plan.rule(stage)
        assert (rule.min_duration_s, rule.min_samples, rule.max_duration_s) == (30.0, 500, 600.0)
        assert (rule.max_disagreement_rate, rule.max_false_stop_rate) == (0.01, 0.01)
        assert (rule.max_latency_p99_s, rule.max_errors, rule.max_unsafe) == (0.05, 0, 0)


def test_a_plan_round_trips_through_its_document():
    assert parse_plan(DEFAULT_PLAN.to_doc()) == DEFAULT_PLAN
    assert parse_plan(json.loads(json.dumps(PLAN.to_doc()))) == PLAN


@pytest.mark.parametrize('stages', [['full'], ['shadow', 'full'], ['canary', 'full'],
                                    ['shadow', 'canary', 'full']])
def test_every_subsequence_ending_with_full_is_a_plan(stages):
    rules = {s: DEFAULT_PLAN.to_doc()['rules']['shadow'] for s in stages[:-1]}
    plan = parse_plan({'stages': stages, 'rules': rules})
    assert [s.value for s in plan.stages] == stages
    assert plan.immediate == (stages == ['full'])


def test_full_alone_installs_at_once():
    assert parse_plan({'stages': ['full']}) == IMMEDIATE and IMMEDIATE.immediate


@pytest.mark.parametrize('doc, field', [
    (plan_doc(stages=['canary', 'shadow', 'full']), 'rollout.stages'),
    (plan_doc(stages=['shadow', 'canary']), 'rollout.stages'),
    (plan_doc(stages=['shadow', 'shadow', 'full']), 'rollout.stages'),
    (plan_doc(stages=[]), 'rollout.stages'),
    (plan_doc(stages=['shadow', 'pilot', 'full']), 'rollout.stages[1]'),
    (plan_doc(stages='full'), 'rollout.stages'),
    (plan_doc(stages=['shadow', 'full']), 'rollout.rules.canary'),
    (plan_doc(rules={'shadow': DEFAULT_PLAN.to_doc()['rules']['shadow']}),
     'rollout.rules.canary'),
    (plan_doc(canary_robots=0), 'rollout.canary_robots'),
    (plan_doc(canary_robots=1.5), 'rollout.canary_robots'),
    (plan_doc(surprise=1), 'rollout.surprise'),
    ({'rules': {}}, 'rollout.stages'),
    (rule_doc(min_duration_s=-1.0), 'rollout.rules.shadow.min_duration_s'),
    (rule_doc(min_samples=0), 'rollout.rules.shadow.min_samples'),
    (rule_doc(min_samples=10.0), 'rollout.rules.shadow.min_samples'),
    (rule_doc(max_duration_s=10.0), 'rollout.rules.shadow.max_duration_s'),
    (rule_doc(max_duration_s=0.0), 'rollout.rules.shadow.max_duration_s'),
    (rule_doc(max_disagreement_rate=1.5), 'rollout.rules.shadow.max_disagreement_rate'),
    (rule_doc(max_false_stop_rate=-0.1), 'rollout.rules.shadow.max_false_stop_rate'),
    (rule_doc(max_latency_p99_s=0.0), 'rollout.rules.shadow.max_latency_p99_s'),
    (rule_doc(max_latency_p99_s=float('nan')), 'rollout.rules.shadow.max_latency_p99_s'),
    (rule_doc(max_errors=-1), 'rollout.rules.shadow.max_errors'),
    (rule_doc(max_unsafe=1), 'rollout.rules.shadow.max_unsafe'),
    (rule_doc(timeout=0), 'rollout.rules.shadow.timeout'),
])
def test_a_bad_plan_names_the_field(doc, field):
    with pytest.raises(SpecError) as caught:
        parse_plan(doc)
    assert caught.value.field == field


def test_no_rule_needed_for_full_nor_allowed():
    rules = DEFAULT_PLAN.to_doc()['rules']
    with pytest.raises(SpecError, match='rollout.rules.full'):
        parse_plan(plan_doc(rules={**rules, 'full': rules['shadow']}))


@pytest.mark.parametrize('changes, field', [
    ({'min_samples': 0}, 'min_samples'), ({'max_duration_s': 5.0}, 'max_duration_s'),
    ({'max_unsafe': 1}, 'max_unsafe'), ({'max_errors': True}, 'max_errors'),
    ({'max_disagreement_rate': 2.0}, 'max_disagreement_rate')])
def test_a_bad_stage_rule_names_the_field(changes, field):
    values = dict(min_duration_s=10.0, min_samples=100, max_duration_s=60.0,
                  max_disagreement_rate=0.05, max_false_stop_rate=0.05, max_latency_p99_s=0.05)
    with pytest.raises(ValueError, match=f'^{field}:'):
        StageRule(**{**values, **changes})


def test_a_plan_needs_one_rule_per_stage_before_full():
    with pytest.raises(ValueError, match='^rules:'):
        RolloutPlan((Stage.SHADOW, Stage.CANARY, Stage.FULL), (RULE,))


def test_the_rollout_number_bound_is_the_bundles():
    assert MAX_NUMBER == bundle.MAX_RELEASE_NUMBER


def test_canary_members_are_the_first_k_by_name():
    assert canary_members(['/r3', '/r1', '/r2', '/r1'], 2) == {'/r1', '/r2'}
    assert canary_members([''], 1) == {''}


# -- observations -------------------------------------------------------------------------------

def obs(active=A, candidate=A, *, active_reasons=(), candidate_reasons=(), t=0.01, error=False,
        stage=Stage.SHADOW, robot=''):
    return Observation(active, candidate, tuple(candidate_reasons), tuple(active_reasons), t,
                       error, stage, robot)


def test_what_one_observation_says():
    assert obs(A, B).disagrees and obs(D, F).disagrees and not obs(A, E).disagrees
    assert obs(A, E).false_stop and obs(D, B).false_stop and not obs(A, D).false_stop
    assert not obs(B, B).false_stop and not obs(B, A).disagrees
    assert obs(B, A, active_reasons=[Reason.COLLISION_RISK]).unsafe
    assert obs(F, D, active_reasons=[Reason.TIME_TO_COLLISION]).unsafe
    assert not obs(B, A, active_reasons=[Reason.CONSTRAINT_RISK]).unsafe
    assert not obs(B, B, active_reasons=[Reason.COLLISION_RISK]).unsafe


def test_what_counts_as_an_evaluation_error():
    rejected = [Reason.INPUT_REJECTED_BY_ORACLE]
    assert obs(error=True).error
    assert obs(A, B, candidate_reasons=rejected).error               # the active scored it
    assert not obs(B, B, candidate_reasons=rejected, active_reasons=rejected).error
    assert obs(t=float('nan')).error and obs(t=-1.0).error


def test_an_observation_validates_its_fields():
    with pytest.raises(ValueError, match='candidate_action'):
        Observation(A, 9)
    with pytest.raises(ValueError, match='active_reasons'):
        Observation(A, A, (), (999,))
    with pytest.raises(ValueError, match='stage'):
        Observation(A, A, stage='shadow')
    assert Observation(0, 3).candidate_action is Action.BLOCK


# -- the analysis: one test per condition -------------------------------------------------------

def analysed(observations, elapsed_s, rule=RULE, stage=Stage.SHADOW) -> Outcome:
    analysis = StageAnalysis(stage)
    for o in observations:
        analysis.add(o)
    return analysis.outcome(T0 + int(elapsed_s * S), T0, rule)


def test_a_stage_passes_only_once_every_robot_that_runs_it_has_been_heard():
    """A fleet's stage once passed on two robots' samples while the third's Oracle was not up:
    the candidate went full without that robot ever scoring it."""
    analysis = StageAnalysis(Stage.SHADOW)
    for _ in range(100):
        analysis.add(obs(robot='/robot_0'))
        analysis.add(obs(robot='/robot_1'))
    fleet = frozenset({'/robot_0', '/robot_1', '/robot_2'})
    assert analysis.outcome(T0 + 30 * S, T0, RULE, fleet).kind is OutcomeKind.RUNNING
    late = analysis.outcome(T0 + 60 * S, T0, RULE, fleet)
    assert late.kind is OutcomeKind.INCONCLUSIVE and 'nothing from /robot_2' in late.reasons[0]
    analysis.add(obs(robot='/robot_2'))
    assert analysis.outcome(T0 + 30 * S, T0, RULE, fleet).kind is OutcomeKind.SUCCESS
    # robots of another stage (a canary's shadowing members) are not waited for here
    canary = StageAnalysis(Stage.CANARY)
    for _ in range(100):
        canary.add(obs(stage=Stage.CANARY, robot='/robot_0'))
        canary.add(obs(stage=Stage.SHADOW, robot='/robot_1'))
    assert canary.outcome(T0 + 30 * S, T0, RULE,
                          frozenset({'/robot_0'})).kind is OutcomeKind.SUCCESS
    assert canary.outcome(T0 + 30 * S, T0, RULE,
                          frozenset({'/robot_0', '/robot_1'})).kind is OutcomeKind.RUNNING


def test_running_until_duration_and_samples_are_reached():
    assert analysed([obs()] * 100, 9.9).kind is OutcomeKind.RUNNING
    assert analysed([obs()] * 99, 30.0).kind is OutcomeKind.RUNNING


def test_success_needs_both_the_minimum_duration_and_samples():
    outcome = analysed([obs()] * 100, 10.0)
    assert outcome.kind is OutcomeKind.SUCCESS
    assert outcome.metrics['samples'] == 100 and outcome.metrics['unsafe'] == 0
    assert (outcome.stage, outcome.started_ns) == (Stage.SHADOW, T0)


def test_inconclusive_past_the_maximum_duration_without_enough_samples():
    outcome = analysed([obs()] * 99, 60.0)
    assert outcome.kind is OutcomeKind.INCONCLUSIVE
    assert '99 of 100 samples' in outcome.reasons[0]


def test_one_unsafe_approval_fails_at_once():
    outcome = analysed([obs(B, A, active_reasons=[Reason.COLLISION_RISK])], 0.1)
    assert outcome.kind is OutcomeKind.FAILURE and 'unsafe approval' in outcome.reasons[0]
    assert outcome.metrics['unsafe'] == 1


def test_errors_beyond_max_errors_fail_at_once():
    assert analysed([obs(error=True)], 0.1).kind is OutcomeKind.FAILURE
    lenient = StageRule(10.0, 100, 60.0, 0.05, 0.05, 0.05, max_errors=1)
    assert analysed([obs(error=True)], 0.1, lenient).kind is OutcomeKind.RUNNING
    assert analysed([obs(error=True)] * 2, 0.1, lenient).kind is OutcomeKind.FAILURE


def test_disagreement_above_the_threshold_fails_once_there_is_evidence():
    few = [obs(A, B)] * 5 + [obs()] * 44                  # 49 samples: not yet evidence
    assert analysed(few, 1.0).kind is OutcomeKind.RUNNING
    outcome = analysed(few + [obs()], 1.0)                # 50: 10 % > 5 %
    assert outcome.kind is OutcomeKind.FAILURE
    assert outcome.reasons[0].startswith('disagreement_rate 0.1 > 0.05')


def test_disagreement_at_the_threshold_passes():
    outcome = analysed([obs(A, B)] * 5 + [obs()] * 95, 10.0)
    assert outcome.kind is OutcomeKind.SUCCESS and outcome.metrics['disagreement_rate'] == 0.05


def test_false_stops_above_the_threshold_fail():
    canary = Stage.CANARY
    outcome = analysed([obs(A, E, stage=canary)] * 6 + [obs(stage=canary)] * 94, 10.0,
                       stage=canary)
    assert outcome.kind is OutcomeKind.FAILURE and 'false_stop_rate' in outcome.reasons[0]
    assert outcome.metrics['disagreement_rate'] == 0.0       # ESCALATE is no BLOCK


def test_latency_p99_above_the_budget_fails():
    slow = [obs(t=0.2)] * 2 + [obs(t=0.01)] * 98
    outcome = analysed(slow, 10.0)
    assert outcome.kind is OutcomeKind.FAILURE and 'latency_p99_s' in outcome.reasons[0]
    assert analysed([obs(t=0.2)] + [obs(t=0.01)] * 99, 10.0).kind is OutcomeKind.SUCCESS


def test_latency_percentiles_never_understate():
    analysis = StageAnalysis(Stage.SHADOW)
    for i in range(1, 1001):
        analysis.add(obs(t=i * 1e-4))
    assert 0.05 <= analysis.latency(0.5) <= 0.05 * 1.012
    assert 0.099 <= analysis.latency(0.99) <= 0.099 * 1.012
    assert analysis.latency(1.0) == pytest.approx(0.1)


def test_observations_of_another_stage_are_ignored():
    """E.g. shadow records still arriving after the canary started."""
    outcome = analysed([obs(B, A, active_reasons=[Reason.COLLISION_RISK])] * 100
                       + [obs(stage=Stage.CANARY)], 10.0, stage=Stage.CANARY)
    assert outcome.kind is OutcomeKind.RUNNING and outcome.metrics['samples'] == 1


def test_a_clock_that_went_backwards_counts_no_time():
    analysis = StageAnalysis(Stage.SHADOW)
    for _ in range(100):
        analysis.add(obs())
    outcome = analysis.outcome(T0 - 3600 * S, T0, RULE)
    assert outcome.kind is OutcomeKind.RUNNING and outcome.metrics['elapsed_s'] == 0.0


def test_robots_are_counted():
    assert analysed([obs(robot='/r1'), obs(robot='/r2'), obs(robot='/r1')],
                    1.0).metrics['robots'] == 2


# -- the state machine: one test per transition -------------------------------------------------

def outcome(kind, rollout, *, stage=None, started_ns=None):
    return Outcome(OutcomeKind(kind), (f'{kind} for the test',), {'samples': 1},
                   stage or rollout.stage, started_ns or rollout.started_ns)


def started(plan=PLAN):
    return Rollout.start(7, '1.1.0', plan, T0)


def kinds(events):
    return [e.kind for e in events]


def test_start_enters_the_first_stage():
    rollout, events = started()
    assert kinds(events) == [EventKind.STAGE_STARTED] and events[0].stage is Stage.SHADOW
    assert rollout.stage is Stage.SHADOW and rollout.scores_candidate
    assert not rollout.enforces_candidate and rollout.started_ns == T0
    assert (events[0].number, events[0].version) == (7, '1.1.0')


def test_a_plan_of_full_alone_is_promoted_at_once():
    rollout, events = started(IMMEDIATE)
    assert kinds(events) == [EventKind.PROMOTED] and rollout.ended is Ended.PROMOTED


def test_success_moves_to_the_next_stage_with_a_fresh_clock():
    rollout, _ = started()
    events = rollout.step(outcome('success', rollout), T0 + 40 * S)
    assert kinds(events) == [EventKind.STAGE_PASSED, EventKind.STAGE_STARTED]
    assert events[1].stage is Stage.CANARY and rollout.stage is Stage.CANARY
    assert rollout.enforces_candidate and rollout.started_ns == T0 + 40 * S


def test_success_of_the_last_stage_promotes():
    rollout, _ = started()
    rollout.step(outcome('success', rollout), T0 + S)
    events = rollout.step(outcome('success', rollout), T0 + 2 * S)
    assert kinds(events) == [EventKind.STAGE_PASSED, EventKind.PROMOTED]
    assert rollout.ended is Ended.PROMOTED and rollout.stage is Stage.FULL
    assert [h['stage'] for h in rollout.history] == ['shadow', 'canary']


def test_failure_aborts():
    rollout, _ = started()
    rollout.step(outcome('success', rollout), T0 + S)
    events = rollout.step(outcome('failure', rollout), T0 + 2 * S)
    assert kinds(events) == [EventKind.STAGE_FAILED, EventKind.ABORTED]
    assert events[1].stage is Stage.CANARY and 'canary failed' in events[1].reason
    assert rollout.ended is Ended.ABORTED and rollout.stage is None
    assert not rollout.scores_candidate and not rollout.enforces_candidate


def test_inconclusive_pauses_for_an_operator():
    rollout, _ = started()
    events = rollout.step(outcome('inconclusive', rollout), T0 + S)
    assert kinds(events) == [EventKind.PAUSED] and rollout.paused
    assert rollout.why == 'inconclusive for the test'
    assert rollout.step(outcome('success', rollout), T0 + 2 * S) == []
    assert rollout.step(outcome('inconclusive', rollout), T0 + 2 * S) == []
    assert rollout.stage is Stage.SHADOW and rollout.paused


def test_a_failure_aborts_a_paused_stage_too():
    rollout, _ = started()
    rollout.step(outcome('inconclusive', rollout), T0 + S)
    assert kinds(rollout.step(outcome('failure', rollout), T0 + 2 * S))[-1] is EventKind.ABORTED


def test_running_changes_nothing():
    rollout, _ = started()
    before = rollout.to_dict()
    assert rollout.step(outcome('running', rollout), T0 + S) == [] and rollout.to_dict() == before


def test_an_outcome_of_another_stage_or_run_is_ignored():
    rollout, _ = started()
    assert rollout.step(outcome('success', rollout, stage=Stage.CANARY), T0 + S) == []
    assert rollout.step(outcome('success', rollout, started_ns=T0 - S), T0 + S) == []
    assert rollout.stage is Stage.SHADOW


def test_operator_promote_of_a_paused_stage_moves_one_stage_on():
    rollout, _ = started()
    rollout.step(outcome('inconclusive', rollout), T0 + S)
    events = rollout.promote(T0 + 2 * S, 'operator alice')
    assert kinds(events) == [EventKind.STAGE_PASSED, EventKind.STAGE_STARTED]
    assert rollout.stage is Stage.CANARY and not rollout.paused
    assert events[0].reason == 'promoted by operator alice'


def test_operator_promote_moves_a_running_stage_on_but_never_past_the_next():
    rollout, _ = started()
    rollout.promote(T0 + S)
    assert rollout.stage is Stage.CANARY and rollout.ended is None
    assert kinds(rollout.promote(T0 + 2 * S))[-1] is EventKind.PROMOTED


def test_nothing_to_promote_after_the_end():
    rollout, _ = started()
    rollout.abort('test', T0 + S)
    with pytest.raises(RolloutError, match='ended'):
        rollout.promote(T0 + 2 * S)


def test_abort_any_time_and_only_once():
    rollout, _ = started()
    events = rollout.abort('operator says so', T0 + S)
    assert kinds(events) == [EventKind.ABORTED] and events[0].reason == 'operator says so'
    assert rollout.abort('again', T0 + 2 * S) == [] and rollout.why == 'operator says so'
    assert rollout.step(outcome('success', Rollout.start(7, '', PLAN, T0)[0]), T0) == []


def test_resume_restarts_the_same_stage():
    rollout, _ = started()
    rollout.step(outcome('success', rollout), T0 + S)
    events = rollout.resume(T0 + 9 * S)
    assert kinds(events) == [EventKind.RESUMED] and events[0].stage is Stage.CANARY
    assert rollout.stage is Stage.CANARY and rollout.started_ns == T0 + 9 * S
    assert rollout.step(outcome('success', rollout, started_ns=T0 + S), T0 + 10 * S) == []


def test_a_paused_rollout_stays_paused_after_resume():
    rollout, _ = started()
    rollout.step(outcome('inconclusive', rollout), T0 + S)
    assert 'paused: inconclusive' in rollout.resume(T0 + 2 * S)[0].reason
    assert rollout.paused


def test_an_ended_rollout_does_not_resume():
    rollout, _ = started()
    rollout.abort('x', T0)
    assert rollout.resume(T0 + S) == [] and rollout.ended is Ended.ABORTED


def test_the_store_form_round_trips_through_json():
    rollout, _ = started()
    rollout.step(outcome('success', rollout), T0 + S)
    rollout.step(outcome('inconclusive', rollout), T0 + 2 * S)
    again = Rollout.from_dict(json.loads(json.dumps(rollout.to_dict())))
    assert again == rollout and again.paused and again.stage is Stage.CANARY


@pytest.mark.parametrize('change, field', [
    ({'index': 2}, 'index'), ({'index': -1}, 'index'), ({'number': 0}, 'number'),
    ({'paused': 'yes'}, 'paused'), ({'ended': 'won'}, 'ended'), ({'surprise': 1}, 'surprise'),
    ({'plan': {'stages': ['canary', 'shadow', 'full']}}, 'plan.stages'),
    ({'history': [{'stage': 'shadow'}]}, 'history'), ({'started_ns': -5}, 'started_ns'),
    ({'version': 'x' * 65}, 'version')])
def test_a_corrupt_store_form_is_refused_naming_the_field(change, field):
    doc = {**started()[0].to_dict(), **change}
    with pytest.raises(ValueError, match=field):
        Rollout.from_dict(doc)


def test_the_operator_message_is_domain_separated():
    assert rollout_message('abort', 'n-1', 5, 7) == b'flywheel.rollout.v1:abort:n-1:5:7'
    from flywheel.release.governor import rollback_message
    assert rollout_message('promote', 'n', 5, 7) != rollback_message('n', 5, 7)


# -- the safety invariants, over random sequences -----------------------------------------------

OPS = st.one_of(st.sampled_from(['success', 'failure', 'inconclusive', 'running',
                                 'stale', 'other_stage', 'promote', 'abort', 'restart']))
PLANS = st.sampled_from([PLAN, RolloutPlan((Stage.SHADOW, Stage.FULL), (RULE,)),
                         RolloutPlan((Stage.CANARY, Stage.FULL), (RULE,))])


@settings(max_examples=400, deadline=None)
@given(PLANS, st.lists(OPS, max_size=25))
def test_invariants_under_any_sequence(plan, ops):
    rollout, _ = Rollout.start(3, '2.0.0', plan, T0)
    passed: list[Stage] = []          # stages that passed, in order
    now = T0
    for op in ops:
        now += S
        before = rollout.to_dict()
        index, ended, paused = rollout.index, rollout.ended, rollout.paused
        events = []
        if op in ('success', 'failure', 'inconclusive', 'running'):
            events = rollout.step(outcome(op, rollout), now)
        elif op == 'stale':
            events = rollout.step(outcome('success', rollout,
                                          started_ns=rollout.started_ns - 1), now)
        elif op == 'other_stage':
            other = next(s for s in plan.stages if s is not rollout.stage)
            events = rollout.step(outcome('success', rollout, stage=other), now)
        elif op == 'promote':
            if ended is not None:
                with pytest.raises(RolloutError):
                    rollout.promote(now)
            else:
                events = rollout.promote(now)
        elif op == 'abort':
            events = rollout.abort('test', now)
        else:  # governance restarts (kill -9): only what was stored survives, then resume
            rollout = Rollout.from_dict(json.loads(json.dumps(before)))
            events = rollout.resume(now)
            assert rollout.index == index and rollout.paused == paused   # never forward
            assert rollout.ended == ended
        passed += [e.stage for e in events if e.kind is EventKind.STAGE_PASSED]
        # the stage never advances but on SUCCESS (running, unpaused) or an operator promote
        if rollout.index > index:
            assert rollout.index == index + 1
            assert op == 'promote' or (op == 'success' and not paused)
        assert rollout.index >= index
        # after the end nothing moves it again
        if ended is not None:
            assert rollout.to_dict() == before or op == 'restart'
            assert rollout.ended is ended
        if rollout.ended is Ended.ABORTED:
            assert not rollout.scores_candidate and not rollout.enforces_candidate
            assert rollout.stage is None
        # FULL only through every stage of the plan, in order
        if rollout.ended is Ended.PROMOTED:
            assert passed == list(plan.stages[:-1]) and rollout.stage is Stage.FULL
        # the candidate is enforced only in CANARY (where the most restrictive verdict wins)
        if rollout.enforces_candidate:
            assert rollout.stage is Stage.CANARY and rollout.ended is None
        assert sum(e.kind is EventKind.PROMOTED for e in events) <= 1
