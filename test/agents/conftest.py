"""Shared by the agents' tests: the shipped spec and policy, the stray pallet the spec lacks, a
verifier that knows it, small red-team budgets and a clock that never runs out."""
from __future__ import annotations

import math

import pytest
from shapely.geometry import Polygon

from flywheel.agents.cases import held, probe
from flywheel.agents.red_team import Flaw, RedTeamConfig, Strategy
from flywheel.enforcement.decision import Action
from flywheel.oracle.spec import Zone
from flywheel.release.regression import Expect
from flywheel.verify.verifier import Knowledge, Verification, Verifier, VerifierConfig, \
    VerifyReason
from flywheel.yamldoc import load_yaml
from test.conftest import CONFIG

PALLET = Zone('stray_pallet', Polygon([(11.2, 7.3), (11.9, 7.3), (11.9, 7.9), (11.2, 7.9)]))
SMALL = RedTeamConfig(explore=300, near_zone=150, corner_cut=50, overspeed=50, incident=60,
                      refine=300)


def never() -> int:
    """A clock at which no deadline ever passes."""
    return 0


@pytest.fixture(scope='session')
def spec_doc():
    return load_yaml(CONFIG / 'oracle_spec.yaml')


@pytest.fixture(scope='session')
def verifier(spec):
    return Verifier(Knowledge.of(spec, hazards=[PALLET]), VerifierConfig(deadline_s=10.0))


def golden(ident: str, x: float, y: float, yaw: float, v: float = 0.5, points: int = 20):
    return held(ident, (x, y, yaw), (v, 0.0), points, 0.1, Expect.ALLOWED)


def flaw(ident: str, x: float, y: float, wx: float, wy: float, yaw: float = 0.0,
         v: float = 0.5, reason: VerifyReason = VerifyReason.COLLISION, zone_id: str = 'hazard',
         limit: float = math.nan, action: Action = Action.ALLOW) -> Flaw:
    """A flaw found by a drive from (x, y), unsafe at (wx, wy)."""
    case = probe(ident, (x, y, yaw), [(v, 0.0)] * 15, 0.1)
    check = Verification(case.proposal().digest, False, reason, 0.0, wx, wy, 1, zone_id,
                         limit=limit, value=v if math.isfinite(limit) else math.nan)
    return Flaw(case, Strategy.EXPLORE, action, check)
