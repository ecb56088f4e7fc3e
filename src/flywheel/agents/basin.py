"""Basin: the golden basin, proposals of normal operation that the first release allows and every
later release must keep allowing.

Invariant: the basin is counted cumulatively against the first release. ``lost`` holds every
member some release since the first stopped allowing (ALLOW or DEGRADE), and a member once lost
stays counted as lost even if a later release allows it again: a refiner that loses a little in
each batch cannot stay under a loss budget by regaining in one batch what it lost in the one
before. Members are the first release's: a sampled case that release does not allow is no member.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from flywheel.agents.cases import case_doc, held
from flywheel.agents.judge import Judge
from flywheel.enforcement.policy import RiskPolicy
from flywheel.errors import SpecError
from flywheel.oracle.spec import OracleSpec
from flywheel.release.regression import Case, Expect, parse_suite
from flywheel.verify.verifier import Verifier
from flywheel.yamldoc import mapping, sequence, text


@dataclass(frozen=True)
class Basin:
    cases: tuple[Case, ...]
    first_version: str
    lost: frozenset[str] = frozenset()

    def __post_init__(self):
        if not isinstance(self.cases, tuple) or not all(
                isinstance(c, Case) and c.expect is Expect.ALLOWED for c in self.cases):
            raise ValueError('cases: need a tuple of golden (ALLOWED) cases')
        ids = [c.id for c in self.cases]
        if len(set(ids)) != len(ids):
            raise ValueError('cases: duplicate ids')
        if not isinstance(self.first_version, str):
            raise ValueError(f'first_version: need a string, got {self.first_version!r}')
        if not isinstance(self.lost, frozenset) or not self.lost <= set(ids):
            raise ValueError('lost: need a frozenset of member ids')

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(c.id for c in self.cases)

    @property
    def size(self) -> int:
        return len(self.cases)

    @property
    def kept(self) -> int:
        return self.size - len(self.lost)

    def losing(self, allowed: Iterable[str]) -> frozenset[str]:
        """Every member counted as lost were only ``allowed`` allowed now: those lost before and
        those not allowed now."""
        return self.lost | (self.ids - frozenset(allowed))

    def account(self, allowed: Iterable[str]) -> Basin:
        """The basin after a release that allows ``allowed``."""
        return replace(self, lost=self.losing(allowed))

    def to_doc(self) -> dict:
        return {'first_version': self.first_version, 'lost': sorted(self.lost),
                'golden': [case_doc(c) for c in self.cases]}

    @classmethod
    def from_doc(cls, doc, spec: OracleSpec, where: str = 'basin') -> Basin:
        """A basin written by to_doc, each case checked against ``spec``; SpecError names the
        field."""
        doc = mapping(doc, where, allowed={'first_version', 'lost', 'golden'},
                      required={'first_version', 'golden'})
        suite = parse_suite({'golden': doc['golden']}, spec, where)
        lost = frozenset(text(i, f'{where}.lost[{k}]')
                         for k, i in enumerate(sequence(doc.get('lost', []), f'{where}.lost')))
        ids = {c.id for c in suite.cases}
        if not lost <= ids:
            raise SpecError(f'{where}.lost', f'names no member: {sorted(lost - ids)[:3]}')
        return cls(suite.cases, text(doc['first_version'], f'{where}.first_version',
                                     allow_empty=True), lost)


def allowed(cases: Iterable[Case], judge: Judge) -> frozenset[str]:
    """The ids of the cases ``judge`` allows (ALLOW or DEGRADE)."""
    return frozenset(c.id for c in cases if judge.action(c.proposal()).approves)


def first_basin(cases: Iterable[Case], judge: Judge) -> Basin:
    """The basin of ``judge``'s release (the first): the golden cases it allows."""
    cases = tuple(cases)
    keep = allowed(cases, judge)
    return Basin(tuple(c for c in cases if c.id in keep), judge.spec.version)


def sample_basin(spec: OracleSpec, policy: RiskPolicy, verifier: Verifier, rng: np.random.Generator,
                 count: int, now_ns_fn: Callable[[], int], *, clearance: float = 0.3,
                 points: int = 20, dt: float = 0.1, speeds: tuple[float, float] = (0.3, 0.7),
                 attempts: int = 50) -> Basin:
    """``count`` golden cases of normal operation (at most ``attempts`` tries each): straight or
    gently curving drives from random starts over the operating area, safe by ``verifier`` with
    ``clearance`` to spare and allowed by ``spec``: the basin of ``spec`` as the first
    release."""
    judge = Judge(spec, policy)
    area = spec.geofence if spec.geofence is not None else spec.uncertainty.validated_region
    x0, y0, x1, y1 = area.bounds
    cases: list[Case] = []
    for _ in range(count * attempts):
        if len(cases) >= count:
            break
        v = rng.uniform(*speeds)
        case = held(f'basin-{len(cases):04d}', (rng.uniform(x0, x1), rng.uniform(y0, y1),
                                                rng.uniform(-np.pi, np.pi)),
                    (v, rng.uniform(-0.3, 0.3) * v), points, dt, Expect.ALLOWED)
        proposal = case.proposal()
        check = verifier.check(proposal, spec.command_hold, now_ns_fn)
        if check.safe and check.min_clearance >= clearance \
                and judge.action(proposal).approves:
            cases.append(case)
    return Basin(tuple(cases), spec.version)
