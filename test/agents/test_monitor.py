"""Monitor thresholds: a rate at or over its threshold raises work in its region, under it does
not, only the window counts, and shares need enough decisions."""
import pytest

from flywheel.agents.monitor import Monitor, MonitorConfig
from flywheel.agents.work import Signal
from flywheel.signals import EvidenceKind

S = 1_000_000_000
NOW = 1_800_000_000 * S


def incident(i, x, y, at=NOW):
    return {'kind': 'incident', 'stamp_ns': at - i * S, 'incident_id': f'sim/{i}', 'x': x,
            'y': y, 'severity': 'COLLISION'}


def decision(i, action, evidence=(), at=NOW, reasons=()):
    return {'kind': 'decision', 'stamp_ns': at - i * S, 'proposal_id': f'p/{i}',
            'action': action, 'reasons': list(reasons),
            'signals': {'safety_score': 0.9, 'min_clearance': 0.5,
                        'evidence': [dict(e) for e in evidence]}}


def coverage_at(x, y):
    return {'rule_id': 'coverage:audit_grid', 'kind': int(EvidenceKind.COVERAGE), 'x': x, 'y': y}


def work(report, signal):
    return {w.region: w for w in report.work if w.signal is signal}


def test_incidents_over_their_rate_raise_work_in_their_cell():
    config = MonitorConfig(window_s=600.0, cell_size=2.0, incident_rate=0.3)   # 3 per 10 min
    report = Monitor(config).scan([incident(i, 11.2, 7.1) for i in range(3)]
                                  + [incident(9, 3.0, 3.0)], NOW)
    found = work(report, Signal.INCIDENT_RATE)
    assert set(found) == {'cell:5,3'}
    item = found['cell:5,3']
    assert item.count == 3 and item.rate == pytest.approx(0.3)
    assert (item.x, item.y) == pytest.approx((11.2, 7.1))
    assert set(item.evidence) == {'sim/0', 'sim/1', 'sim/2'}


def test_incidents_under_their_rate_raise_none():
    config = MonitorConfig(window_s=600.0, incident_rate=0.4)
    report = Monitor(config).scan([incident(i, 11.2, 7.1) for i in range(3)], NOW)
    assert not work(report, Signal.INCIDENT_RATE)
    assert report.incidents == 3


def test_only_the_window_counts_and_it_rolls():
    config = MonitorConfig(window_s=60.0, incident_rate=0.01)
    old = [incident(i, 1.0, 1.0, at=NOW - 120 * S) for i in range(5)]
    assert not Monitor(config).scan(old, NOW).work
    assert Monitor(config).scan(old, NOW - 100 * S).work


def test_escalations_per_cell_need_enough_decisions():
    config = MonitorConfig(escalation_rate=0.2, min_decisions=20)
    records = ([decision(i, 'ESCALATE', [coverage_at(6.5, 3.5)]) for i in range(5)]
               + [decision(10 + i, 'ALLOW', [coverage_at(6.4, 3.6)]) for i in range(15)])
    found = work(Monitor(config).scan(records, NOW), Signal.ESCALATION_RATE)
    assert set(found) == {'all', 'cell:3,1'}
    assert found['cell:3,1'].rate == pytest.approx(0.25) and found['cell:3,1'].count == 5
    assert not Monitor(config).scan(records[:19], NOW).work


def test_stops_per_zone_named_by_the_evidence():
    shelf = {'rule_id': 'shelf_a', 'kind': int(EvidenceKind.CLEARANCE), 'x': 4.0, 'y': 2.4}
    records = ([decision(i, 'BLOCK', [shelf]) for i in range(8)]
               + [decision(10 + i, 'DEGRADE', [shelf]) for i in range(12)]
               + [decision(30 + i, 'ALLOW') for i in range(40)])
    report = Monitor(MonitorConfig(stop_rate=0.3, min_decisions=20)).scan(records, NOW)
    found = work(report, Signal.STOP_RATE)
    assert set(found) == {'zone:shelf_a', 'cell:2,1'}         # 8 of 60 overall: 13 %
    stats = {r.region: r for r in report.regions}
    assert stats['zone:shelf_a'].decisions == 20 and stats['all'].decisions == 60


def test_verifications_not_cleared():
    records = ([decision(i, 'BLOCK', reasons=['VERIFIED_UNSAFE']) for i in range(15)]
               + [decision(20 + i, 'ALLOW', reasons=['VERIFIED_SAFE']) for i in range(10)])
    found = work(Monitor(MonitorConfig(min_decisions=20)).scan(records, NOW),
                 Signal.UNVERIFIED_RATE)
    assert found['all'].rate == pytest.approx(0.6)


def test_records_it_cannot_read_are_skipped():
    records = [{'kind': 'incident', 'stamp_ns': NOW, 'x': 'here'}, {'kind': 'decision'},
               {'kind': 'release', 'stamp_ns': NOW}]
    report = Monitor().scan(records, NOW)
    assert report.incidents == 0 and report.work == ()


@pytest.mark.parametrize('field,value', [('window_s', 0.0), ('escalation_rate', 2.0),
                                         ('min_decisions', 0)])
def test_a_bad_config_names_its_field(field, value):
    with pytest.raises(ValueError, match=field):
        MonitorConfig(**{field: value})
