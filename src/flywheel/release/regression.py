"""The regression suite a release carries (`regression.yaml`): proposals whose verdict must not
change. Golden cases must stay allowed (ALLOW or DEGRADE), incident cases (recorded proposals that
led, or nearly led, to harm) must be blocked (BLOCK or worse).

A case is a start pose and the twists held from it (``twists: [[v, w], ...]``, one per point, or
one ``twist`` held for ``points``), ``dt`` apart; `Case.proposal` rolls it out with
flywheel.kinematics, so every case is a kinematically consistent proposal. Parsing checks each one
with `check_proposal` against the release's own spec (frame, and a horizon of at least its
command_hold): a malformed case is a SpecError naming it, never a case that passes by being
rejected.

`run_suite` scores every case with the candidate's Oracle and decides it with the Gate's risk
policy (RiskPolicy.assess, most_restrictive), exactly as the Gate would. It is total: a case the
Oracle rejects as input, or whose evaluation raises, fails; the suite passes only at 100 %.

Example::

    golden:
      - {id: aisle_east, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
    incidents:
      - {id: shelf_a_2026_11_02, start: [3.0, 4.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel.enforcement.decision import Action, Reason, most_restrictive
from flywheel.enforcement.policy import RiskPolicy
from flywheel.errors import SpecError, SpecLimitError
from flywheel.kinematics import rollout
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import OracleSpec
from flywheel.proposal import Proposal, ProposalLimits, check_proposal, make_proposal
from flywheel.yamldoc import integer, mapping, number, sequence, text

MAX_CASES = 1000
MAX_POINTS = 200
MAX_ID_CHARS = 64
MAX_DT = 0.5                       # ProposalLimits.max_sample_gap's default
SUITE_PROPOSER = 'regression'      # the proposer id cases carry while they are checked


class Expect(enum.Enum):
    ALLOWED = 'golden'      # ALLOW or DEGRADE
    BLOCKED = 'incident'    # BLOCK or worse

    def met_by(self, action: Action) -> bool:
        return action.approves if self is Expect.ALLOWED else action >= Action.BLOCK


@dataclass(frozen=True)
class Case:
    id: str
    expect: Expect
    start: tuple[float, float, float]
    twists: tuple[tuple[float, float], ...]   # twist i is held from point i for dt
    dt: float

    def __post_init__(self):
        if not isinstance(self.id, str) or not 0 < len(self.id) <= MAX_ID_CHARS:
            raise ValueError(f'id: need 1..{MAX_ID_CHARS} characters, got {self.id!r}')
        if not isinstance(self.expect, Expect):
            raise ValueError(f'expect: need an Expect, got {self.expect!r}')
        values = (*self.start, *(x for t in self.twists for x in t), self.dt)
        if len(self.start) != 3 or not all(len(t) == 2 for t in self.twists) or not all(
                isinstance(x, float) and math.isfinite(x) for x in values):
            raise ValueError(f'{self.id}: start [x, y, yaw] and twists [v, w] of finite floats')
        if not 1 <= len(self.twists) <= MAX_POINTS:
            raise ValueError(f'{self.id}: twists: need 1..{MAX_POINTS}, got {len(self.twists)}')
        if not 0.0 < self.dt <= MAX_DT:
            raise ValueError(f'{self.id}: dt: need (0, {MAX_DT}] s, got {self.dt}')

    def proposal(self, proposer_id: str = SUITE_PROPOSER, frame_id: str = 'map',
                 seq: int = 1) -> Proposal:
        """The case as a proposal: each point exactly where the twist before it leads."""
        twists = np.array(self.twists, dtype=np.float64)
        n = len(twists)
        t_ns = np.round(np.arange(n) * self.dt * 1e9).astype(np.int64)
        states = rollout(*self.start, twists, np.diff(t_ns) * 1e-9)
        return make_proposal(f'{SUITE_PROPOSER}/{self.id}', proposer_id, seq, frame_id, 0, t_ns,
                             states, tuple(twists[0]))


@dataclass(frozen=True)
class RegressionSuite:
    cases: tuple[Case, ...]

    def __post_init__(self):
        if not isinstance(self.cases, tuple) or not 1 <= len(self.cases) <= MAX_CASES:
            raise ValueError(f'cases: need 1..{MAX_CASES}')
        ids = [c.id for c in self.cases]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f'cases: duplicate id {dup!r}')

    @property
    def golden(self) -> tuple[Case, ...]:
        return tuple(c for c in self.cases if c.expect is Expect.ALLOWED)

    @property
    def incidents(self) -> tuple[Case, ...]:
        return tuple(c for c in self.cases if c.expect is Expect.BLOCKED)


_CASE_KEYS = {'id', 'start', 'twists', 'twist', 'points', 'dt'}


def parse_suite(doc: Any, spec: OracleSpec, where: str = 'regression') -> RegressionSuite:
    """A suite from a document like the example above, each case checked as a proposal against
    ``spec``; a SpecError (SpecLimitError for a size limit) names the case and field."""
    doc = mapping(doc, where, allowed={'golden', 'incidents'})
    limits = ProposalLimits(frame_id=spec.frame_id, max_points=MAX_POINTS,
                            allowed_proposers=(SUITE_PROPOSER,),
                            min_horizon=spec.command_hold, max_sample_gap=MAX_DT)
    cases: list[Case] = []
    seen: set[str] = set()
    for key, expect in (('golden', Expect.ALLOWED), ('incidents', Expect.BLOCKED)):
        entries = sequence(doc.get(key, []), f'{where}.{key}')
        if len(cases) + len(entries) > MAX_CASES:
            raise SpecLimitError(f'{where}.{key}', f'more than {MAX_CASES} cases in the suite')
        for i, entry in enumerate(entries):
            case = _parse_case(entry, expect, f'{where}.{key}[{i}]')
            at = f'{where}.{key}[{i}]'
            if case.id in seen:
                raise SpecError(f'{at}.id', f'duplicate id {case.id!r}')
            seen.add(case.id)
            defects = check_proposal(case.proposal(SUITE_PROPOSER, spec.frame_id), limits)
            if defects:
                raise SpecError(at, f'case {case.id!r} is not a well-formed proposal for this '
                                f'spec: ' + '; '.join(f'{d.name.lower()}: {detail}'
                                                      for d, detail in defects))
            cases.append(case)
    if not cases:
        raise SpecError(where, 'the suite holds no case (give golden and/or incidents)')
    return RegressionSuite(tuple(cases))


def _parse_case(entry: Any, expect: Expect, at: str) -> Case:
    entry = mapping(entry, at, allowed=_CASE_KEYS, required={'id', 'start', 'dt'})
    ident = text(entry['id'], f'{at}.id')
    if len(ident) > MAX_ID_CHARS:
        raise SpecError(f'{at}.id', f'longer than {MAX_ID_CHARS} characters')
    start = _numbers(entry['start'], f'{at}.start', 3)
    if ('twists' in entry) == ('twist' in entry):
        raise SpecError(at, 'give either twists: [[v, w], ...] or twist: [v, w] with points')
    if 'twists' in entry:
        if 'points' in entry:
            raise SpecError(f'{at}.points', 'only with a single held twist')
        raw = sequence(entry['twists'], f'{at}.twists')
        if not 1 <= len(raw) <= MAX_POINTS:
            raise SpecLimitError(f'{at}.twists', f'need 1..{MAX_POINTS} twists, got {len(raw)}')
        twists = tuple(_numbers(t, f'{at}.twists[{j}]', 2) for j, t in enumerate(raw))
    else:
        points = integer(entry.get('points'), f'{at}.points', lo=1, hi=MAX_POINTS)
        twists = (_numbers(entry['twist'], f'{at}.twist', 2),) * points
    dt = number(entry['dt'], f'{at}.dt', lo=0.0, hi=MAX_DT, lo_open=True)
    return Case(ident, expect, start, twists, dt)


def _numbers(value: Any, field: str, count: int) -> tuple[float, ...]:
    items = sequence(value, field)
    if len(items) != count:
        raise SpecError(field, f'expected {count} numbers, got {len(items)}')
    return tuple(number(x, f'{field}[{j}]') for j, x in enumerate(items))


# -- running it ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseFailure:
    case_id: str
    expected: str                  # 'allowed' or 'blocked'
    got: Action
    reasons: tuple[Reason, ...]
    detail: str = ''

    def __str__(self) -> str:
        why = ', '.join(r.name for r in self.reasons) or self.detail
        return f'{self.case_id}: expected {self.expected}, got {self.got.name} ({why})'


@dataclass(frozen=True)
class SuiteResult:
    passed: bool
    failures: tuple[CaseFailure, ...]
    cases: int


def run_suite(suite: RegressionSuite, oracle: Oracle, policy: RiskPolicy) -> SuiteResult:
    """Every case scored by ``oracle`` and decided by ``policy``; passed only when all meet
    their expectation. Cases carry the Oracle's first allowed proposer and its frame."""
    proposer, frame = oracle.limits.allowed_proposers[0], oracle.limits.frame_id
    failures = []
    for seq, case in enumerate(suite.cases, 1):
        expected = 'allowed' if case.expect is Expect.ALLOWED else 'blocked'
        try:
            signals = oracle.evaluate(case.proposal(proposer, frame, seq))
            action, findings = most_restrictive(policy.assess(signals))
        except Exception as exc:  # noqa: BLE001 - a case that cannot be scored fails, loudly
            failures.append(CaseFailure(case.id, expected, Action.FALLBACK,
                                        (Reason.INTERNAL_ERROR,),
                                        f'{type(exc).__name__}: {exc}'[:200]))
            continue
        reasons = tuple(f.reason for f in findings)
        if Reason.INPUT_REJECTED_BY_ORACLE in reasons:
            failures.append(CaseFailure(case.id, expected, action, reasons,
                                        'the Oracle rejected the case as input: not scored'))
        elif not case.expect.met_by(action):
            failures.append(CaseFailure(case.id, expected, action, reasons))
    return SuiteResult(not failures, tuple(failures), len(suite.cases))
