"""The red team finds planted flaws (a hazard and an incident the spec lacks, a speed hazard),
refines around them, finds nothing where the verifier knows no more than the spec, and never
counts what the verifier could not check."""
import itertools

import numpy as np
import pytest
from shapely.geometry import Point, box

from flywheel.agents.judge import Judge
from flywheel.agents.red_team import RedTeam, RedTeamConfig, Strategy
from flywheel.oracle.spec import Zone
from flywheel.verify.verifier import Knowledge, Verifier, VerifierConfig, VerifyReason
from test.agents.conftest import PALLET, SMALL, never


def attack(spec, policy, verifier, seed=1, config=SMALL, **kw):
    return RedTeam(config).attack(spec, policy, verifier, np.random.default_rng(seed), never,
                                  **kw)


@pytest.fixture(scope='module')
def report(spec, policy, verifier):
    return attack(spec, policy, verifier)


def test_it_finds_the_hazard_the_spec_lacks(report):
    assert report.flaws
    assert all(f.reason is VerifyReason.COLLISION and f.verification.zone_id == 'stray_pallet'
               for f in report.flaws)
    # the points of contact lie on the pallet
    assert all(PALLET.polygon.distance(Point(f.x, f.y)) < 1e-6
               for f in report.flaws)


def test_every_flaw_is_approved_by_the_gate_and_unsafe_by_the_verifier(spec, policy, verifier,
                                                                       report):
    judge = Judge(spec, policy)
    for f in report.flaws[:40]:
        proposal = f.case.proposal()
        assert judge.action(proposal).approves
        assert not verifier.check(proposal, spec.command_hold, never).safe


def test_refinement_finds_more_around_the_flaws_found(spec, policy, verifier, report):
    assert report.strategies['refine'][1] > 0
    bare = attack(spec, policy, verifier,
                  config=RedTeamConfig(**{**SMALL.__dict__, 'refine': 0}))
    assert len(report.flaws) > len(bare.flaws)


def test_the_same_seed_gives_the_same_report(spec, policy, verifier, report):
    again = attack(spec, policy, verifier)
    assert [f.case for f in again.flaws] == [f.case for f in report.flaws]


def test_an_incident_region_the_spec_lacks_is_found_from_its_incident(spec, policy):
    incident = {'incident_id': 'sim/7', 'severity': 'COLLISION', 'x': 3.0, 'y': 6.5,
                'distance': 0.0}
    verifier = Verifier(Knowledge.of(spec, [incident]), VerifierConfig(deadline_s=10.0))
    report = attack(spec, policy, verifier, incidents=[incident])
    towards = report.strategies[Strategy.INCIDENT.value]
    assert towards[1] > 0
    assert {f.reason for f in report.flaws} == {VerifyReason.INCIDENT_REGION}


def test_a_speed_hazard_is_found_by_overspeed_and_exploration(spec, policy):
    ramp = Zone('ramp', box(8.0, 0.5, 11.0, 2.0), 0.2)
    verifier = Verifier(Knowledge.of(spec, speed_hazards=[ramp]), VerifierConfig(deadline_s=10))
    report = attack(spec, policy, verifier)
    assert report.flaws
    assert {f.reason for f in report.flaws} == {VerifyReason.LIMIT}
    assert all(f.verification.limit == 0.2 for f in report.flaws)


def test_nothing_is_found_where_the_verifier_knows_no_more_than_the_spec(spec, policy):
    verifier = Verifier(Knowledge.of(spec), VerifierConfig(deadline_s=10.0))
    report = attack(spec, policy, verifier)
    assert report.probes > 400 and report.flaws == ()


def test_what_the_verifier_could_not_check_is_no_flaw(spec, policy):
    slow = itertools.count(step=10**9)          # every reading a second later: always late
    verifier = Verifier(Knowledge.of(spec, hazards=[PALLET]), VerifierConfig(deadline_s=0.5))
    report = RedTeam(SMALL).attack(spec, policy, verifier, np.random.default_rng(1),
                                   lambda: next(slow))
    assert report.flaws == () and report.unverified > 0


def test_the_audit_counts_probes_per_coverage_cell(report, spec):
    rows, cols = spec.coverage.cells.shape
    assert report.audit
    assert all(0 <= r < rows and 0 <= c < cols for r, c in report.audit)
    dirty = [cell for cell, (_, unsafe) in report.audit.items() if unsafe]
    assert (7, 11) in dirty                       # the pallet's cell


def test_a_bad_config_names_its_field():
    with pytest.raises(ValueError, match='dt'):
        RedTeamConfig(dt=0.0)
