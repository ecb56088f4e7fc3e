"""Cases as the agents make and write them: proposals in the regression-suite format of a release
(flywheel.release.regression: a start pose, the twists held from it, dt), so a flaw the red team
finds and a golden proposal the refiner keeps travel in the release exactly as they were judged.

Numbers are rounded when a case is made (0.1 mm, 1e-4 rad, 1e-4 m/s), so writing a case and
reading it back gives the very same proposal."""
from __future__ import annotations

from collections.abc import Iterable

from flywheel.release.regression import Case, Expect

DIGITS = 4


def probe(ident: str, start, twists, dt: float, expect: Expect = Expect.BLOCKED) -> Case:
    """A case of ``twists`` ([v, w] per point) held from ``start`` ([x, y, yaw]) ``dt`` apart."""
    return Case(ident, expect, tuple(round(float(v), DIGITS) for v in start),
                tuple((round(float(v), DIGITS), round(float(w), DIGITS)) for v, w in twists),
                round(float(dt), DIGITS))


def held(ident: str, start, twist, points: int, dt: float,
         expect: Expect = Expect.BLOCKED) -> Case:
    """A case holding one twist for ``points`` points."""
    return probe(ident, start, [twist] * points, dt, expect)


def as_expected(case: Case, expect: Expect, ident: str | None = None) -> Case:
    return Case(ident or case.id, expect, case.start, case.twists, case.dt)


def case_doc(case: Case) -> dict:
    """The case as regression.yaml writes it (one held twist as ``twist`` + ``points``)."""
    doc = {'id': case.id, 'start': list(case.start)}
    if len(set(case.twists)) == 1:
        doc['twist'] = list(case.twists[0])
        doc['points'] = len(case.twists)
    else:
        doc['twists'] = [list(t) for t in case.twists]
    doc['dt'] = case.dt
    return doc


def suite_doc(golden: Iterable[Case], incidents: Iterable[Case]) -> dict:
    doc = {}
    golden, incidents = list(golden), list(incidents)
    if golden:
        doc['golden'] = [case_doc(c) for c in golden]
    if incidents:
        doc['incidents'] = [case_doc(c) for c in incidents]
    return doc
