"""The blue team raises a regression for more stops, less throughput and a lost basin after a
rollout, and nothing when nothing got worse."""
import math

import pytest

from flywheel.agents.basin import Basin
from flywheel.agents.blue_team import BlueTeam, BlueTeamConfig, DecisionStats
from flywheel.agents.judge import Judge
from flywheel.agents.work import Signal
from flywheel.oracle.spec import parse_spec
from test.agents.conftest import golden


def decisions(allow: int, stop: int, speed: float = 0.5, escalate: int = 0):
    out = [{'kind': 'decision', 'proposal_id': f'a{i}', 'action': 'ALLOW',
            'command': [speed, 0.0]} for i in range(allow)]
    out += [{'kind': 'decision', 'proposal_id': f's{i}', 'action': 'BLOCK', 'command': None}
            for i in range(stop)]
    out += [{'kind': 'decision', 'proposal_id': f'e{i}', 'action': 'ESCALATE',
             'command': None} for i in range(escalate)]
    return out


def signals(report):
    return {w.signal for w in report.regressions}


def test_nothing_got_worse():
    report = BlueTeam().review(decisions(95, 5), decisions(96, 4), release='1.0.1')
    assert report.regressions == ()
    assert report.after.approval_share == pytest.approx(0.96)


def test_more_stops_are_false_stops_and_less_throughput():
    report = BlueTeam().review(decisions(95, 5), decisions(80, 5, escalate=15),
                               release='1.0.1')
    assert signals(report) == {Signal.FALSE_STOPS, Signal.THROUGHPUT}
    stops = next(w for w in report.regressions if w.signal is Signal.FALSE_STOPS)
    assert stops.region == 'release:1.0.1' and stops.count == 20
    assert 'e0' in stops.evidence


def test_slower_commands_are_less_throughput():
    report = BlueTeam().review(decisions(95, 5, speed=0.6), decisions(95, 5, speed=0.4))
    (slow,) = report.regressions
    assert slow.signal is Signal.THROUGHPUT and 'speed' in slow.detail


def test_too_few_decisions_say_nothing():
    report = BlueTeam(BlueTeamConfig(min_decisions=50)).review(decisions(10, 0),
                                                               decisions(0, 10))
    assert report.regressions == ()


def test_a_release_that_blocks_golden_proposals_loses_the_basin(spec_doc, policy):
    on_path = golden('basin-0000', 1.5, 1.0, 0.0)
    elsewhere = golden('basin-0001', 9.5, 6.0, math.pi)
    basin = Basin((on_path, elsewhere), '1.0.0')
    doc = {**spec_doc, 'version': '1.0.1',
           'keep_out': spec_doc['keep_out'] + [{'id': 'fw-0001-g0', 'polygon': [
               [2.4, 0.9], [2.6, 0.9], [2.6, 1.1], [2.4, 1.1]]}]}
    judge = Judge(parse_spec(doc), policy)
    report = BlueTeam().review(decisions(95, 5), decisions(95, 5), basin, judge, '1.0.1')
    (lost,) = report.regressions
    assert lost.signal is Signal.LOST_BASIN and lost.evidence == ('basin-0000',)
    assert (report.basin_kept_before, report.basin_kept_after) == (2, 1)
    # lost before already: not this release's regression
    again = BlueTeam().review([], [], report.basin, judge, '1.0.2')
    assert again.regressions == () and again.basin_kept_after == 1


def test_records_other_than_decisions_are_not_counted():
    stats = DecisionStats.of(decisions(3, 1) + [{'kind': 'incident'}])
    assert (stats.decisions, stats.approved, stats.stopped) == (4, 3, 1)
