"""Every node reports on /diagnostics with levels an aggregator can alarm on: here the graph with
governance, where the Gate is OK only while an approved command is in force and governance says
which release runs."""
from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from test.ros.conftest import values
from test.ros.test_hot_swap import releases  # noqa: F401 - the fixture

pytestmark = pytest.mark.ros

NODES = ('sim', 'audit', 'oracle', 'gate', 'governance')


def test_every_node_reports_its_health(probe, start_graph, releases, tmp_path):  # noqa: F811
    root_path, _ = releases
    reports = probe.collect(DiagnosticArray, '/diagnostics', 100)
    start_graph(list(NODES), {
        'governance': {'store_dir': str(tmp_path / 'store'), 'trust_root_path': str(root_path)},
        'oracle': {'trust_root_path': str(root_path), 'follow_governance': True},
        'gate': {'trust_root_path': str(root_path), 'follow_governance': True},
        'audit': {'ledger_path': str(tmp_path / 'audit.sqlite')}})

    def latest() -> dict[str, DiagnosticStatus]:
        return {s.name.split(': ')[1]: s for r in reports for s in r.status}
    assert probe.spin_until(lambda: set(NODES) <= set(latest()), 30.0), sorted(latest())
    status = latest()
    # no release installed yet: governance and the Oracle say why nothing runs, as errors
    assert status['governance'].level == DiagnosticStatus.ERROR
    assert status['oracle'].level == DiagnosticStatus.ERROR
    assert status['gate'].level >= DiagnosticStatus.WARN
    gate = values(status['gate'])
    assert gate['command_in_force'] == 'None' and 'decisions' in gate
    assert {kv.key for kv in status['audit'].values} >= {'records', 'uncommitted', 'gap_records'}
    assert all(s.hardware_id.endswith(name) for name, s in status.items())
