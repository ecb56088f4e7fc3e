"""Staged rollout of an Oracle release: a candidate earns control stage by stage.

- SHADOW: the candidate scores every proposal beside the active release; only the active release
  is enforced; both verdicts are recorded.
- CANARY: both are enforced and the most restrictive action wins (in a fleet, on the first
  `canary_robots` robots only: `canary_members`).
- FULL: the candidate becomes the active release; the one before is kept for rollback.

The plan (`RolloutPlan`: which stages, a `StageRule` for each stage before FULL, k) travels signed
inside the release (`rollout.yaml`); releases without one get the default (config/rollout.yaml,
`DEFAULT_PLAN`). A signed plan of just [FULL] installs at once.

`StageAnalysis` turns what the Gate recorded (`Observation`) into an `Outcome` by explicit
conditions, and `Rollout` (a state machine with no I/O and no clock: time is passed in) moves on
it. Invariants (test/release/test_rollout.py checks them with random sequences and restarts):

- the stage advances only on a SUCCESS outcome of the current stage (same stage, same start) or
  a signed operator promote, and by one stage at a time: FULL is reached only through every stage
  of the plan, and no unsigned request skips one;
- a FAILURE aborts, even while paused; an INCONCLUSIVE outcome pauses for an operator (promote or
  abort), and a paused rollout ignores every outcome but FAILURE;
- once aborted nothing of the candidate is scored or enforced, and nothing moves it again;
- `resume` after a restart keeps the stage (never further along), restarts its clock and its
  analysis, and a paused rollout stays paused. CANARY enforces at least the active release, so
  resuming in any stage never enforces less than the active release.
"""
from __future__ import annotations

import copy
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.enforcement.decision import Action, Reason
from flywheel.errors import RolloutError, SpecError
from flywheel.yamldoc import integer, load_yaml, mapping, number, sequence

MAX_NUMBER = 2**63 - 1          # bundle.MAX_RELEASE_NUMBER (bundle.py imports this module)
MAX_VERSION_CHARS = 64
MAX_SAMPLES = 10**9
MAX_STAGE_S = 30 * 86400.0      # no stage may wait longer than 30 days for its evidence
MAX_CANARY_ROBOTS = 10_000
MAX_HISTORY = 64                # (stage, outcome) entries kept for the ledger
MAX_REASON_CHARS = 1024
MIN_EVIDENCE = 50               # samples before a rate or latency threshold can fail a stage
UNSAFE_REASONS = frozenset({Reason.COLLISION_RISK, Reason.TIME_TO_COLLISION})
ACTIONS = ('promote', 'abort')  # what a signed operator request may ask


class Stage(enum.Enum):
    SHADOW = 'shadow'
    CANARY = 'canary'
    FULL = 'full'


ORDER = (Stage.SHADOW, Stage.CANARY, Stage.FULL)


def _check_stages(stages) -> None:
    if not isinstance(stages, tuple) or not all(isinstance(s, Stage) for s in stages):
        raise ValueError(f'stages: need a tuple of Stage, got {stages!r}')
    if not stages or stages[-1] is not Stage.FULL:
        raise ValueError(f'stages: must end with full, got {_names(stages)}')
    positions = [ORDER.index(s) for s in stages]
    if positions != sorted(set(positions)):
        raise ValueError(f'stages: must be in the order shadow, canary, full, each at most '
                         f'once, got {_names(stages)}')


def _names(stages) -> str:
    return '[' + ', '.join(getattr(s, 'value', repr(s)) for s in stages) + ']'


def _check_int(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f'{name}: need an integer in {lo}..{hi}, got {value!r}')


def _check_number(name: str, value, lo: float, hi: float, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < lo or (lo_open and value == lo) or value > hi:
        raise ValueError(f'{name}: need a number in {"(" if lo_open else "["}{lo:g}, {hi:g}], '
                         f'got {value!r}')


# -- the plan -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageRule:
    """When a stage ends, and how. Rates count over the stage's samples; a threshold is crossed
    when the value is strictly above it. Every threshold applies in the stage it is given for:
    in SHADOW the false-stop rate counts what the candidate *would* have stopped."""

    min_duration_s: float         # SUCCESS needs at least this long in the stage ...
    min_samples: int              # ... and at least this many samples, with nothing failed
    max_duration_s: float         # past it without both: INCONCLUSIVE (pause for an operator)
    max_disagreement_rate: float  # candidate BLOCK-or-worse where the active ALLOWs/DEGRADEs
    max_false_stop_rate: float    # candidate stops (does not approve) what the active approves
    max_latency_p99_s: float      # p99 of the candidate's evaluation time
    max_errors: int = 0           # candidate evaluation errors / INPUT_REJECTED the active scored
    max_unsafe: int = 0           # candidate approvals of an active collision BLOCK: always 0

    def __post_init__(self):
        _check_number('min_duration_s', self.min_duration_s, 0.0, MAX_STAGE_S)
        _check_number('max_duration_s', self.max_duration_s, 0.0, MAX_STAGE_S, lo_open=True)
        if self.max_duration_s < self.min_duration_s:
            raise ValueError(f'max_duration_s: must be >= min_duration_s '
                             f'({self.min_duration_s}), got {self.max_duration_s}')
        _check_int('min_samples', self.min_samples, 1, MAX_SAMPLES)
        _check_number('max_disagreement_rate', self.max_disagreement_rate, 0.0, 1.0)
        _check_number('max_false_stop_rate', self.max_false_stop_rate, 0.0, 1.0)
        _check_number('max_latency_p99_s', self.max_latency_p99_s, 0.0, 60.0, lo_open=True)
        _check_int('max_errors', self.max_errors, 0, MAX_SAMPLES)
        if isinstance(self.max_unsafe, bool) or self.max_unsafe != 0:
            raise ValueError(f'max_unsafe: an unsafe approval always fails a stage; must be 0, '
                             f'got {self.max_unsafe!r}')

    @property
    def min_evidence(self) -> int:
        """Samples before a rate or latency threshold can fail the stage."""
        return min(MIN_EVIDENCE, self.min_samples)


_RULE_KEYS = {'min_duration_s', 'min_samples', 'max_duration_s', 'max_disagreement_rate',
              'max_false_stop_rate', 'max_latency_p99_s', 'max_errors'}


@dataclass(frozen=True)
class RolloutPlan:
    """``stages``: a subsequence of SHADOW, CANARY, FULL ending with FULL; ``rules``: one
    StageRule per stage before FULL, in order; ``canary_robots``: k robots of a fleet enforce the
    candidate in CANARY (the others keep shadowing it)."""

    stages: tuple[Stage, ...]
    rules: tuple[StageRule, ...] = ()
    canary_robots: int = 1

    def __post_init__(self):
        _check_stages(self.stages)
        if not isinstance(self.rules, tuple) or len(self.rules) != len(self.stages) - 1 \
                or not all(isinstance(r, StageRule) for r in self.rules):
            raise ValueError(f'rules: need one StageRule for each stage before full '
                             f'({_names(self.stages[:-1])}), got {self.rules!r}')
        _check_int('canary_robots', self.canary_robots, 1, MAX_CANARY_ROBOTS)

    @property
    def immediate(self) -> bool:
        """True for [full]: the release becomes active at once."""
        return self.stages == (Stage.FULL,)

    def rule(self, stage: Stage) -> StageRule:
        try:
            return self.rules[self.stages.index(stage)]
        except (ValueError, IndexError):
            raise ValueError(f'the plan {_names(self.stages)} has no rule for {stage.value}') \
                from None

    def to_doc(self) -> dict:
        """The plan as the YAML/JSON document `parse_plan` reads."""
        return {'stages': [s.value for s in self.stages], 'canary_robots': self.canary_robots,
                'rules': {s.value: {k: getattr(r, k) for k in sorted(_RULE_KEYS)}
                          for s, r in zip(self.stages, self.rules)}}


def parse_plan(doc: Any, where: str = 'rollout') -> RolloutPlan:
    """A RolloutPlan from a document like config/rollout.yaml; a SpecError names the field."""
    doc = mapping(doc, where, allowed={'stages', 'rules', 'canary_robots'}, required={'stages'})
    names = sequence(doc['stages'], f'{where}.stages')
    stages = []
    for i, name in enumerate(names):
        try:
            stages.append(Stage(name))
        except (ValueError, TypeError):
            raise SpecError(f'{where}.stages[{i}]', f'unknown stage {name!r} (known: '
                            f'{", ".join(s.value for s in ORDER)})') from None
    try:
        _check_stages(tuple(stages))
    except ValueError as exc:
        raise SpecError(f'{where}.stages', str(exc).partition(': ')[2]) from exc
    before_full = {s.value for s in stages[:-1]}
    rules_doc = mapping(doc.get('rules', {}), f'{where}.rules', allowed=before_full,
                        required=before_full)
    rules = []
    for stage in stages[:-1]:
        at = f'{where}.rules.{stage.value}'
        body = mapping(rules_doc.get(stage.value), at, allowed=_RULE_KEYS | {'max_unsafe'},
                       required=_RULE_KEYS - {'max_errors'})
        if 'max_unsafe' in body and (isinstance(body['max_unsafe'], bool)
                                     or body['max_unsafe'] != 0):
            raise SpecError(f'{at}.max_unsafe', f'an unsafe approval always fails a stage: must '
                            f'be 0, got {body["max_unsafe"]!r}')
        try:
            rules.append(StageRule(
                min_duration_s=number(body['min_duration_s'], f'{at}.min_duration_s', lo=0.0,
                                      hi=MAX_STAGE_S),
                min_samples=integer(body['min_samples'], f'{at}.min_samples', lo=1,
                                    hi=MAX_SAMPLES),
                max_duration_s=number(body['max_duration_s'], f'{at}.max_duration_s', lo=0.0,
                                      hi=MAX_STAGE_S, lo_open=True),
                max_disagreement_rate=number(body['max_disagreement_rate'],
                                             f'{at}.max_disagreement_rate', lo=0.0, hi=1.0),
                max_false_stop_rate=number(body['max_false_stop_rate'],
                                           f'{at}.max_false_stop_rate', lo=0.0, hi=1.0),
                max_latency_p99_s=number(body['max_latency_p99_s'], f'{at}.max_latency_p99_s',
                                         lo=0.0, hi=60.0, lo_open=True),
                max_errors=integer(body.get('max_errors', 0), f'{at}.max_errors', lo=0,
                                   hi=MAX_SAMPLES)))
        except ValueError as exc:
            if isinstance(exc, SpecError):
                raise
            name, _, problem = str(exc).partition(': ')
            raise SpecError(f'{at}.{name}', problem) from exc
    canary = integer(doc.get('canary_robots', 1), f'{where}.canary_robots', lo=1,
                     hi=MAX_CANARY_ROBOTS)
    try:
        return RolloutPlan(tuple(stages), tuple(rules), canary)
    except ValueError as exc:
        name, _, problem = str(exc).partition(': ')
        raise SpecError(f'{where}.{name}', problem) from exc


def load_default_plan(path: str | Path) -> RolloutPlan:
    """The plan for releases that carry none (config/rollout.yaml)."""
    return parse_plan(load_yaml(path), str(path))


def _rule(min_s: float, samples: int) -> StageRule:
    return StageRule(min_duration_s=min_s, min_samples=samples, max_duration_s=600.0,
                     max_disagreement_rate=0.01, max_false_stop_rate=0.01,
                     max_latency_p99_s=0.05, max_errors=0)


# config/rollout.yaml holds the same (a test keeps them together).
DEFAULT_PLAN = RolloutPlan((Stage.SHADOW, Stage.CANARY, Stage.FULL),
                           (_rule(30.0, 500), _rule(30.0, 500)), canary_robots=1)
IMMEDIATE = RolloutPlan((Stage.FULL,))


def canary_members(robots: Iterable[str], k: int) -> frozenset[str]:
    """The robots (namespaces) that enforce the candidate in CANARY: the first k by name, so
    every governance instance that sees the same fleet picks the same ones."""
    return frozenset(sorted(set(robots))[:k])


# -- what the analysis sees ---------------------------------------------------------------------

_ACTIONS, _REASONS = frozenset(Action), frozenset(Reason)


@dataclass(frozen=True)
class Observation:
    """What one proposal tells the analysis, from the Gate's records of both verdicts.

    A candidate verdict that is missing, unsigned, unreadable or shed is recorded with
    ``candidate_error=True`` (fail closed: it counts against the candidate)."""

    active_action: Action
    candidate_action: Action
    candidate_reasons: tuple[Reason, ...] = ()
    active_reasons: tuple[Reason, ...] = ()
    candidate_evaluation_s: float = 0.0
    candidate_error: bool = False
    stage: Stage = Stage.SHADOW       # the stage it was recorded in (others are ignored)
    robot: str = ''                   # namespace; '' for one robot

    def __post_init__(self):
        for name in ('active_action', 'candidate_action'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value not in _ACTIONS:
                raise ValueError(f'{name}: need an Action, got {value!r}')
            object.__setattr__(self, name, Action(value))
        for name in ('candidate_reasons', 'active_reasons'):
            value = tuple(getattr(self, name))
            if not all(isinstance(r, int) and not isinstance(r, bool) and r in _REASONS
                       for r in value):
                raise ValueError(f'{name}: need Reasons, got {value!r}')
            object.__setattr__(self, name, tuple(Reason(r) for r in value))
        if not isinstance(self.stage, Stage):
            raise ValueError(f'stage: need a Stage, got {self.stage!r}')
        if not isinstance(self.candidate_error, bool):
            raise ValueError(f'candidate_error: need true/false, got {self.candidate_error!r}')
        if not isinstance(self.robot, str):
            raise ValueError(f'robot: need a namespace string, got {self.robot!r}')
        if isinstance(self.candidate_evaluation_s, bool) or not isinstance(
                self.candidate_evaluation_s, (int, float)):
            raise ValueError(f'candidate_evaluation_s: need a number, got '
                             f'{self.candidate_evaluation_s!r}')

    @property
    def error(self) -> bool:
        """An evaluation error of the candidate, or INPUT_REJECTED where the active scored it
        (a non-finite or negative evaluation time is a corrupt record: an error too)."""
        t = self.candidate_evaluation_s
        return (self.candidate_error or not math.isfinite(t) or t < 0.0
                or (Reason.INPUT_REJECTED_BY_ORACLE in self.candidate_reasons
                    and Reason.INPUT_REJECTED_BY_ORACLE not in self.active_reasons))

    @property
    def unsafe(self) -> bool:
        """The candidate approves what the active release stops for a predicted collision."""
        return (self.candidate_action.approves and self.active_action >= Action.BLOCK
                and not UNSAFE_REASONS.isdisjoint(self.active_reasons))

    @property
    def disagrees(self) -> bool:
        return self.active_action.approves and self.candidate_action >= Action.BLOCK

    @property
    def false_stop(self) -> bool:
        return self.active_action.approves and not self.candidate_action.approves


class OutcomeKind(enum.Enum):
    RUNNING = 'running'
    SUCCESS = 'success'
    FAILURE = 'failure'
    INCONCLUSIVE = 'inconclusive'


@dataclass(frozen=True)
class Outcome:
    """How a stage stands; ``stage`` and ``started_ns`` name the stage run it was computed for
    (`Rollout.step` ignores an outcome of another stage or of a run before a restart)."""

    kind: OutcomeKind
    reasons: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict, hash=False)
    stage: Stage | None = None
    started_ns: int | None = None


# Latencies go into log-spaced buckets (bounded memory whatever the sample count); a percentile is
# reported as its bucket's upper edge (capped at the largest seen): never below the true value and
# at most 1.2 % above it.
_EDGES = np.logspace(-6, 3, 9 * 200 + 1)


class StageAnalysis:
    """Counts the observations of one stage; `outcome` applies a StageRule to them."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.samples = self.disagreements = self.false_stops = self.errors = self.unsafe = 0
        self.robots: set[str] = set()
        self._latency = np.zeros(len(_EDGES) + 1, dtype=np.int64)
        self._latency_max = 0.0

    def add(self, obs: Observation) -> None:
        if obs.stage is not self.stage:
            return
        self.samples += 1
        if len(self.robots) < MAX_CANARY_ROBOTS:
            self.robots.add(obs.robot)
        if obs.error:
            self.errors += 1
            return              # an error is not a verdict to compare
        self.unsafe += obs.unsafe
        self.disagreements += obs.disagrees
        self.false_stops += obs.false_stop
        t = float(obs.candidate_evaluation_s)
        self._latency[int(np.searchsorted(_EDGES, t))] += 1
        self._latency_max = max(self._latency_max, t)

    def latency(self, q: float) -> float:
        """The q-quantile of the candidate's evaluation time (0 with no samples)."""
        total = int(self._latency.sum())
        if not total:
            return 0.0
        bucket = int(np.searchsorted(np.cumsum(self._latency), math.ceil(q * total)))
        edge = float(_EDGES[bucket]) if bucket < len(_EDGES) else self._latency_max
        return min(edge, self._latency_max)

    def metrics(self, elapsed_s: float) -> dict:
        n = self.samples
        return {'samples': n, 'elapsed_s': round(elapsed_s, 3),
                'disagreement_rate': self.disagreements / n if n else 0.0,
                'false_stop_rate': self.false_stops / n if n else 0.0,
                'latency_p50_s': self.latency(0.5), 'latency_p99_s': self.latency(0.99),
                'errors': self.errors, 'unsafe': self.unsafe, 'robots': len(self.robots)}

    def outcome(self, now_ns: int, started_ns: int, rule: StageRule,
                robots: frozenset[str] = frozenset()) -> Outcome:
        """FAILURE at once on an unsafe approval or more errors than allowed, and as soon as a
        rate or the latency crosses its threshold over at least rule.min_evidence samples;
        SUCCESS once both the minimum duration and sample count are reached with nothing failed
        and every robot of ``robots`` (those governed) has been heard; INCONCLUSIVE past the
        maximum duration; RUNNING otherwise. A clock that went backwards counts as no time
        spent.

        Why every robot: a fleet's stage once passed on two robots' samples while the third's
        Oracle had not come up; the candidate went full and approved, on that robot, a collision
        its active release blocked. A robot that is never heard leaves the stage to an
        operator."""
        elapsed = max(0, now_ns - started_ns) / 1e9
        m = self.metrics(elapsed)
        failed = []
        if self.unsafe > rule.max_unsafe:
            failed.append(f'{self.unsafe} unsafe approval(s): the candidate approved proposals '
                          'the active release blocks for a predicted collision')
        if self.errors > rule.max_errors:
            failed.append(f'{self.errors} candidate evaluation error(s) > max_errors '
                          f'{rule.max_errors}')
        if self.samples >= rule.min_evidence:
            for key, limit, what in (
                    ('disagreement_rate', rule.max_disagreement_rate, 'blocks what the active '
                     'release approves'),
                    ('false_stop_rate', rule.max_false_stop_rate, 'stops what the active '
                     'release approves'),
                    ('latency_p99_s', rule.max_latency_p99_s, 'evaluation time p99')):
                if m[key] > limit:
                    failed.append(f'{key} {m[key]:.4g} > {limit:g} ({what}; '
                                  f'{self.samples} samples)')
        run = {'stage': self.stage, 'started_ns': started_ns, 'metrics': m}
        if failed:
            return Outcome(OutcomeKind.FAILURE, tuple(failed), **run)
        unheard = sorted(robots - self.robots)
        if elapsed >= rule.min_duration_s and self.samples >= rule.min_samples and not unheard:
            return Outcome(OutcomeKind.SUCCESS, (f'{self.samples} samples over {elapsed:.1f} s '
                                                 'within every threshold',), **run)
        if elapsed >= rule.max_duration_s:
            silent = (f', nothing from {", ".join(r or "the robot" for r in unheard)}'
                      if unheard else '')
            return Outcome(OutcomeKind.INCONCLUSIVE, (
                f'{rule.max_duration_s:g} s passed with {self.samples} of {rule.min_samples} '
                f'samples and {min(elapsed, rule.min_duration_s):.1f} of '
                f'{rule.min_duration_s:g} s{silent}: an operator decides (promote or abort)',),
                **run)
        return Outcome(OutcomeKind.RUNNING, (), **run)


# -- the state machine --------------------------------------------------------------------------

class EventKind(enum.Enum):
    STAGE_STARTED = 'stage_started'
    STAGE_PASSED = 'stage_passed'
    STAGE_FAILED = 'stage_failed'
    PAUSED = 'paused'
    PROMOTED = 'promoted'         # the candidate becomes the active release
    ABORTED = 'aborted'           # the candidate is dropped; the active release alone governs
    RESUMED = 'resumed'


@dataclass(frozen=True)
class Event:
    """What the ledger records of a rollout."""

    kind: EventKind
    number: int                   # the candidate's release number
    version: str                  # its Oracle version
    stage: Stage | None           # the stage it concerns (None: none)
    reason: str = ''
    metrics: dict = field(default_factory=dict, hash=False)
    stamp_ns: int = 0


class Ended(enum.Enum):
    PROMOTED = 'promoted'
    ABORTED = 'aborted'


@dataclass
class Rollout:
    """The rollout of one candidate release. Build it with `start` (or `from_dict`); every
    method takes the wall-clock time in ns and returns the events it caused."""

    number: int
    version: str
    plan: RolloutPlan
    index: int                    # into plan.stages: the current stage
    started_ns: int               # when the current stage (re)started, wall clock
    paused: bool = False
    why: str = ''                 # why it is paused, or why it was aborted
    ended: Ended | None = None
    history: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.ended is not None and not isinstance(self.ended, Ended):
            raise ValueError(f'ended: need an Ended or None, got {self.ended!r}')
        _check_int('number', self.number, 1, MAX_NUMBER)
        if not isinstance(self.version, str) or len(self.version) > MAX_VERSION_CHARS:
            raise ValueError(f'version: need a string of at most {MAX_VERSION_CHARS} '
                             f'characters, got {self.version!r}')
        if not isinstance(self.plan, RolloutPlan):
            raise ValueError(f'plan: need a RolloutPlan, got {self.plan!r}')
        last = len(self.plan.stages) - 1
        _check_int('index', self.index, 0, last)
        if (self.index == last) != (self.ended is Ended.PROMOTED):
            raise ValueError(f'index: {self.index} ({self.plan.stages[self.index].value}) '
                             'but the rollout ' + ('was promoted' if self.ended is Ended.PROMOTED
                                                   else 'has not reached full'))
        _check_int('started_ns', self.started_ns, 0, 2**63 - 1)
        if not isinstance(self.paused, bool):
            raise ValueError(f'paused: need true/false, got {self.paused!r}')
        if not isinstance(self.why, str) or len(self.why) > MAX_REASON_CHARS:
            raise ValueError(f'why: need a string of at most {MAX_REASON_CHARS} characters')
        if not isinstance(self.history, list) or len(self.history) > MAX_HISTORY:
            raise ValueError(f'history: need a list of at most {MAX_HISTORY} entries')
        for i, entry in enumerate(self.history):
            _check_history(entry, f'history[{i}]')

    @classmethod
    def start(cls, number: int, version: str, plan: RolloutPlan,
              now_ns: int) -> tuple[Rollout, list[Event]]:
        """A rollout of release ``number`` in the first stage of ``plan`` (promoted at once for
        [full])."""
        rollout = cls(number, version, plan, 0, now_ns,
                      ended=Ended.PROMOTED if plan.immediate else None)
        if plan.immediate:
            return rollout, [rollout._event(EventKind.PROMOTED, now_ns, 'the plan is [full]')]
        return rollout, [rollout._event(EventKind.STAGE_STARTED, now_ns)]

    # -- what is in force -----------------------------------------------------------------------

    @property
    def stage(self) -> Stage | None:
        """The current stage (FULL once promoted); None once aborted."""
        return None if self.ended is Ended.ABORTED else self.plan.stages[self.index]

    @property
    def rule(self) -> StageRule | None:
        return None if self.ended is not None else self.plan.rule(self.stage)

    @property
    def scores_candidate(self) -> bool:
        """The candidate Oracle scores proposals (SHADOW and CANARY, running or paused)."""
        return self.ended is None

    @property
    def enforces_candidate(self) -> bool:
        """The Gate enforces the most restrictive of both verdicts (CANARY, running or paused;
        on `canary_members` of a fleet)."""
        return self.ended is None and self.stage is Stage.CANARY

    # -- transitions ----------------------------------------------------------------------------

    def step(self, outcome: Outcome, now_ns: int) -> list[Event]:
        """SUCCESS: the next stage (FULL: promoted); FAILURE: aborted (also while paused);
        INCONCLUSIVE: paused. Ignored: RUNNING, an outcome of another stage or stage run, and
        anything but FAILURE while paused or after the end."""
        if self.ended is not None or outcome.kind is OutcomeKind.RUNNING:
            return []
        if (outcome.stage is not None and outcome.stage is not self.stage) or (
                outcome.started_ns is not None and outcome.started_ns != self.started_ns):
            return []
        reason = '; '.join(outcome.reasons)[:MAX_REASON_CHARS]
        if outcome.kind is OutcomeKind.FAILURE:
            self._record(outcome, now_ns)
            failed = self._event(EventKind.STAGE_FAILED, now_ns, reason, outcome.metrics)
            return [failed] + self._end(Ended.ABORTED, f'{self.stage.value} failed: {reason}',
                                        now_ns, outcome.metrics)
        if self.paused:
            return []
        self._record(outcome, now_ns)
        if outcome.kind is OutcomeKind.INCONCLUSIVE:
            self.paused, self.why = True, reason
            return [self._event(EventKind.PAUSED, now_ns, reason, outcome.metrics)]
        return self._advance(reason, now_ns, outcome.metrics)

    def promote(self, now_ns: int, by: str = 'operator') -> list[Event]:
        """A signed operator request: the current stage (paused or running) passes and the next
        one starts; from the last stage before FULL the candidate is promoted."""
        if self.ended is not None:
            raise RolloutError(f'release {self.number}: the rollout has ended '
                               f'({self.ended.value}); nothing to promote')
        self.history.append({'stage': self.stage.value, 'kind': 'promote',
                             'reasons': [f'promoted by {by}'], 'metrics': {},
                             'at_ns': now_ns})
        del self.history[:-MAX_HISTORY]
        return self._advance(f'promoted by {by}', now_ns, {})

    def abort(self, reason: str, now_ns: int) -> list[Event]:
        """Drop the candidate (any time before the end; after it, nothing happens)."""
        if self.ended is not None:
            return []
        return self._end(Ended.ABORTED, str(reason)[:MAX_REASON_CHARS], now_ns, {})

    def resume(self, now_ns: int) -> list[Event]:
        """After a restart: the same stage, its clock restarted (its analysis starts empty); a
        paused rollout stays paused; an ended one stays ended."""
        if self.ended is not None:
            return []
        self.started_ns = now_ns
        why = f' (paused: {self.why})' if self.paused else ''
        return [self._event(EventKind.RESUMED, now_ns,
                            f'governance restarted: {self.stage.value} starts over (its clock '
                            f'and its analysis){why}'[:MAX_REASON_CHARS])]

    def _advance(self, reason: str, now_ns: int, metrics: dict) -> list[Event]:
        events = [self._event(EventKind.STAGE_PASSED, now_ns, reason, metrics)]
        self.index += 1
        self.paused, self.why, self.started_ns = False, '', now_ns
        if self.plan.stages[self.index] is Stage.FULL:
            self.ended = Ended.PROMOTED
            return events + [self._event(EventKind.PROMOTED, now_ns, 'every stage passed')]
        return events + [self._event(EventKind.STAGE_STARTED, now_ns)]

    def _end(self, how: Ended, reason: str, now_ns: int, metrics: dict) -> list[Event]:
        event = self._event(EventKind.ABORTED, now_ns, reason, metrics)
        self.ended, self.paused, self.why = how, False, reason
        return [event]

    def _record(self, outcome: Outcome, now_ns: int) -> None:
        self.history.append({'stage': self.stage.value, 'kind': outcome.kind.value,
                             'reasons': [r[:MAX_REASON_CHARS] for r in outcome.reasons[:8]],
                             'metrics': _plain(outcome.metrics), 'at_ns': now_ns})
        del self.history[:-MAX_HISTORY]

    def _event(self, kind: EventKind, now_ns: int, reason: str = '',
               metrics: dict | None = None) -> Event:
        return Event(kind, self.number, self.version, self.stage, reason, dict(metrics or {}),
                     now_ns)

    # -- the store's form -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {'number': self.number, 'version': self.version, 'plan': self.plan.to_doc(),
                'index': self.index, 'started_ns': self.started_ns, 'paused': self.paused,
                'why': self.why, 'ended': self.ended.value if self.ended else '',
                'history': copy.deepcopy(self.history)}

    @classmethod
    def from_dict(cls, doc: Any) -> Rollout:
        """A rollout from `to_dict`'s form; ValueError (naming the field) for anything else."""
        if not isinstance(doc, dict):
            raise ValueError(f'rollout: expected an object, got {type(doc).__name__}')
        keys = {'number', 'version', 'plan', 'index', 'started_ns', 'paused', 'why', 'ended',
                'history'}
        if set(doc) != keys:
            raise ValueError(f'rollout: keys {sorted(set(doc) ^ keys)} unknown or missing')
        try:
            plan = parse_plan(doc['plan'], 'rollout.plan')
        except SpecError as exc:
            raise ValueError(str(exc)) from exc
        ended = doc['ended']
        if ended not in ('', *(e.value for e in Ended)):
            raise ValueError(f'rollout.ended: unknown {ended!r}')
        try:
            return cls(doc['number'], doc['version'], plan, doc['index'], doc['started_ns'],
                       doc['paused'], doc['why'], Ended(ended) if ended else None,
                       copy.deepcopy(doc['history']))
        except ValueError as exc:
            raise ValueError(f'rollout.{exc}') from exc


def rollout_message(action: str, nonce: str, expires_ns: int, number: int) -> bytes:
    """What an operator signs to promote or abort the rollout of release ``number``."""
    return f'flywheel.rollout.v1:{action}:{nonce}:{int(expires_ns)}:{int(number)}'.encode()


@dataclass(frozen=True)
class RolloutRequest:
    key_id: str
    action: str                   # 'promote' | 'abort'
    nonce: str
    expires_ns: int
    number: int                   # the candidate's release number
    signature: str


# -- helpers ------------------------------------------------------------------------------------

def _plain(metrics: dict) -> dict:
    """Metrics as JSON-safe numbers (at most 16 of them)."""
    out = {}
    for key, value in list(metrics.items())[:16]:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
                value):
            out[str(key)[:64]] = value
    return out


def _check_history(entry, where: str) -> None:
    if not isinstance(entry, dict) or set(entry) != {'stage', 'kind', 'reasons', 'metrics',
                                                     'at_ns'}:
        raise ValueError(f'{where}: need {{stage, kind, reasons, metrics, at_ns}}')
    if entry['stage'] not in {s.value for s in ORDER}:
        raise ValueError(f'{where}.stage: unknown {entry["stage"]!r}')
    if entry['kind'] not in {k.value for k in OutcomeKind} | {'promote'}:
        raise ValueError(f'{where}.kind: unknown {entry["kind"]!r}')
    if not isinstance(entry['reasons'], list) or len(entry['reasons']) > 8 or not all(
            isinstance(r, str) and len(r) <= MAX_REASON_CHARS for r in entry['reasons']):
        raise ValueError(f'{where}.reasons: need up to 8 strings')
    metrics = entry['metrics']
    if not isinstance(metrics, dict) or len(metrics) > 16 or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in metrics.items()):
        raise ValueError(f'{where}.metrics: need up to 16 numbers by name')
    _check_int(f'{where}.at_ns', entry['at_ns'], 0, 2**63 - 1)
