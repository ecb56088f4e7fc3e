"""The refiner: corrections that block the flaws and keep the basin, rejections when they would
not, the basin counted cumulatively against the first release, growing zones where flaws recur,
speed limits, coverage, and a candidate that makes a release whose suite passes."""
import math

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPoint

from flywheel.agents.basin import Basin, sample_basin
from flywheel.agents.candidate import (BATCH, candidate_files, check_release_files,
                                       dump_yaml, read_batch)
from flywheel.agents.judge import Judge
from flywheel.agents.red_team import RedTeam
from flywheel.agents.refiner import (CorrectionKind, Refiner, RefinerConfig, kdop,
                                     next_version)
from flywheel.agents.triage import triage
from flywheel.enforcement.decision import Action
from flywheel.errors import RegressionFailedError
from flywheel.oracle.spec import SPEC_LIMITS, check_spec_size, parse_spec
from flywheel.release.bundle import REGRESSION, SPEC
from flywheel.verify.verifier import VerifyReason
from test.agents.conftest import SMALL, flaw, golden, never

ON_PATH = golden('basin-0000', 1.5, 1.0, 0.0)          # drives east along y = 1 past x = 2.5
ELSEWHERE = golden('basin-0001', 9.5, 6.0, math.pi)
CROSSING = flaw('cross', 2.5, 2.0, 2.5, 1.0, yaw=-math.pi / 2)   # unsafe where the basin drives


def refine(spec_doc, policy, queue, basin, **config):
    return Refiner(RefinerConfig(**config)).refine(spec_doc, queue, basin, policy)


# -- the whole loop on the planted hazard -------------------------------------------------------

@pytest.fixture(scope='module')
def loop(spec, spec_doc, policy, verifier):
    basin = sample_basin(spec, policy, verifier, np.random.default_rng(4), 80, never)
    report = RedTeam(SMALL).attack(spec, policy, verifier, np.random.default_rng(1), never)
    queue = triage(flaws=report.flaws, near=[c.start[:2] for c in basin.cases])
    return basin, report, Refiner().refine(spec_doc, queue, basin, policy, report.audit)


def test_the_candidate_blocks_every_flaw_and_keeps_the_basin(loop, policy):
    basin, report, candidate = loop
    assert report.flaws and candidate.changed
    assert candidate.evidence['flaws'] == {'total': len(report.flaws),
                                           'blocked': len(report.flaws), 'open': []}
    judge = Judge(candidate.spec, policy)
    assert all(judge.action(f.case.proposal()) >= Action.BLOCK for f in report.flaws)
    assert candidate.basin.kept == basin.size == 80
    assert all(judge.action(c.proposal()).approves for c in basin.cases)


def test_the_candidate_is_a_new_valid_release_within_the_spec_limits(loop, spec, policy):
    _, _, candidate = loop
    assert candidate.version == '1.0.1' and candidate.parent_version == spec.version
    kinds = {c.kind for c in candidate.corrections}
    assert CorrectionKind.ADD_KEEP_OUT in kinds
    files = candidate_files(candidate, policy)        # bundles it and runs its suite
    from flywheel.yamldoc import parse_yaml
    doc = parse_yaml(files[SPEC].decode(), SPEC)
    check_spec_size(doc, SPEC_LIMITS)
    assert parse_spec(doc).version == '1.0.1'
    batch = read_batch(files[BATCH])
    assert batch['signed'] is False and batch['evidence']['basin']['kept'] == 80
    suite = parse_yaml(files[REGRESSION].decode(), REGRESSION)
    assert len(suite['golden']) == 80 and suite['incidents']


def test_a_candidate_whose_suite_fails_is_refused(loop, policy):
    _, _, candidate = loop
    files = candidate_files(candidate, policy)
    into_shelf = {'golden': [{'id': 'shelf', 'start': [3.0, 4.0, 0.0], 'twist': [0.8, 0.0],
                              'points': 20, 'dt': 0.1}]}
    with pytest.raises(RegressionFailedError, match='shelf'):
        check_release_files({**files, REGRESSION: dump_yaml(into_shelf)}, policy)


# -- the basin ------------------------------------------------------------------------------------

def test_a_correction_that_would_block_the_basin_is_rejected(spec, spec_doc, policy):
    judge = Judge(spec, policy)
    assert judge.action(CROSSING.case.proposal()).approves
    basin = Basin((ON_PATH, ELSEWHERE), spec.version)
    candidate = refine(spec_doc, policy, triage(flaws=[CROSSING]), basin)
    assert not candidate.changed
    (rejected,) = candidate.rejected
    assert rejected.basin_lost == ('basin-0000',) and 'basin' in rejected.reason
    assert candidate.basin.kept == 2


def test_within_the_loss_allowed_it_is_accepted(spec, spec_doc, policy):
    basin = Basin((ON_PATH, ELSEWHERE), spec.version)
    candidate = refine(spec_doc, policy, triage(flaws=[CROSSING]), basin, max_basin_loss=0.5)
    assert [c.kind for c in candidate.corrections] == [CorrectionKind.ADD_KEEP_OUT]
    assert candidate.basin.lost == {'basin-0000'}
    assert candidate.evidence['basin']['lost_this_batch'] == ['basin-0000']


def test_the_basin_is_counted_cumulatively_against_the_first_release(spec, spec_doc, policy):
    # one member may be lost; another was lost by an earlier batch (and is allowed again now):
    # losing this one would make two since the first release
    earlier = Basin((ON_PATH, ELSEWHERE), '1.0.0', lost=frozenset({'basin-0001'}))
    assert Judge(spec, policy).action(ELSEWHERE.proposal()).approves
    candidate = refine(spec_doc, policy, triage(flaws=[CROSSING]), earlier, max_basin_loss=0.5)
    assert not candidate.changed and len(candidate.rejected) == 1
    assert candidate.basin.lost == {'basin-0001'} and candidate.basin.kept == 1


def test_a_lost_member_stays_lost():
    basin = Basin((ON_PATH, ELSEWHERE), '1.0.0')
    once = basin.account({'basin-0001'})
    again = once.account({'basin-0000', 'basin-0001'})
    assert once.lost == again.lost == {'basin-0000'} and again.kept == 1


def test_the_basin_round_trips_through_its_document(spec):
    basin = Basin((ON_PATH, ELSEWHERE), '1.0.0', frozenset({'basin-0001'}))
    back = Basin.from_doc(dump_yaml_doc(basin.to_doc()), spec)
    assert back == basin


def dump_yaml_doc(doc):
    from flywheel.yamldoc import parse_yaml
    return parse_yaml(dump_yaml(doc).decode(), 'basin')


def test_sampled_basin_members_are_safe_clear_and_allowed(spec, policy, verifier):
    basin = sample_basin(spec, policy, verifier, np.random.default_rng(2), 20, never)
    judge = Judge(spec, policy)
    assert basin.size == 20 and basin.first_version == spec.version
    for case in basin.cases:
        check = verifier.check(case.proposal(), spec.command_hold, never)
        assert check.safe and check.min_clearance >= 0.3
        assert judge.action(case.proposal()).approves


# -- growing, speed, coverage ---------------------------------------------------------------------

def test_flaws_recurring_at_a_zone_grow_it_with_a_larger_margin(spec, spec_doc, policy):
    basin = Basin((ELSEWHERE,), spec.version)
    first = refine(spec_doc, policy, triage(flaws=[flaw('a', 3.0, 5.8, 3.0, 6.5,
                                                        yaw=math.pi / 2)]), basin)
    (added,) = first.corrections
    assert added.kind is CorrectionKind.ADD_KEEP_OUT and added.target == 'fw-0001-g0'
    assert added.margin == pytest.approx(0.1)
    again = flaw('b', 2.2, 7.1, 3.0, 6.9)                  # passes just above that zone
    assert Judge(first.spec, policy).action(again.case.proposal()).approves
    second = refine(first.spec_doc, policy, triage(flaws=[again]), first.basin)
    (grown,) = second.corrections
    assert grown.kind is CorrectionKind.GROW_KEEP_OUT and grown.target == 'fw-0001-g1'
    assert grown.margin == pytest.approx(0.2)
    zones = {z.zone_id: z.polygon for z in second.spec.keep_out}
    assert 'fw-0001-g0' not in zones and zones['fw-0001-g1'].contains(
        [z for z in first.spec.keep_out if z.zone_id == 'fw-0001-g0'][0].polygon)
    assert second.version == '1.0.2'


def test_a_speed_hazard_gets_a_speed_limit_zone(spec, spec_doc, policy):
    limit = flaw('fast', 8.5, 1.0, 9.0, 1.0, reason=VerifyReason.LIMIT, zone_id='ramp',
                 limit=0.2)
    candidate = refine(spec_doc, policy, triage(flaws=[limit]), Basin((ELSEWHERE,), '1.0.0'))
    (added,) = candidate.corrections
    assert added.kind is CorrectionKind.ADD_SPEED_ZONE and added.value == 0.2
    zone = next(z for z in candidate.spec.speed_zones if z.zone_id == added.target)
    assert zone.max_speed == 0.2 and zone.polygon.contains(shapely.Point(9.0, 1.0))


def test_a_speed_zone_too_lax_is_tightened(spec, spec_doc, policy):
    slow = flaw('slow', 0.5, 3.3, 0.5, 3.6, yaw=math.pi / 2, v=0.25,
                reason=VerifyReason.LIMIT, zone_id='crosswalk', limit=0.2)
    candidate = refine(spec_doc, policy, triage(flaws=[slow]), Basin((ELSEWHERE,), '1.0.0'))
    (tightened,) = candidate.corrections
    assert tightened.kind is CorrectionKind.TIGHTEN_LIMIT and tightened.target == 'crosswalk'
    assert (tightened.previous, tightened.value) == (0.3, 0.2)
    assert {z.zone_id: z.max_speed for z in candidate.spec.speed_zones}['crosswalk'] == 0.2


def test_thoroughly_audited_cells_stop_escalating(spec, spec_doc, policy):
    audit = {(3, 6): [30, 0], (4, 6): [30, 1], (5, 6): [5, 0]}
    candidate = Refiner().refine(spec_doc, (), Basin((ELSEWHERE,), '1.0.0'), policy, audit)
    (raised,) = candidate.corrections
    assert raised.kind is CorrectionKind.UPDATE_COVERAGE and raised.cells == ((3, 6),)
    cells = candidate.spec.coverage.cells
    assert cells[3, 6] == 1.0 and cells[4, 6] == pytest.approx(0.2)


def test_the_fixed_size_baseline_places_one_square(spec, spec_doc, policy):
    candidate = refine(spec_doc, policy, triage(flaws=[flaw('a', 3.0, 5.8, 3.0, 6.5,
                                                            yaw=math.pi / 2)]),
                       Basin((ELSEWHERE,), '1.0.0'), mode='fixed', fixed_size=0.4)
    (square,) = candidate.corrections
    assert shapely.Polygon(square.polygon).area == pytest.approx(0.16)


def test_nothing_to_correct_is_no_candidate(spec, spec_doc, policy):
    candidate = Refiner().refine(spec_doc, (), Basin((ELSEWHERE,), '1.0.0'), policy)
    assert not candidate.changed and candidate.version == spec.version


# -- pieces ---------------------------------------------------------------------------------------

def test_a_kdop_holds_its_points_grown_by_the_margin():
    rng = np.random.default_rng(0)
    for _ in range(50):
        points = rng.normal(size=(int(rng.integers(1, 12)), 2))
        margin = float(rng.uniform(0.01, 0.5))
        shape = kdop(points, margin, 16)
        assert shape.is_valid and len(shape.exterior.coords) - 1 <= 16
        assert shape.contains(MultiPoint(points).convex_hull.buffer(margin * 0.999))


@pytest.mark.parametrize('old,new', [('1.0.0', '1.0.1'), ('v7', 'v8'), ('gamma', 'gamma.1')])
def test_next_version(old, new):
    assert next_version(old) == new


@pytest.mark.parametrize('field,value', [('mode', 'clever'), ('min_margin', 5.0),
                                         ('max_basin_loss', 1.5), ('zone_prefix', 'a b')])
def test_a_bad_config_names_its_field(field, value):
    with pytest.raises(ValueError, match=field):
        RefinerConfig(**{field: value})
