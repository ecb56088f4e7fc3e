"""The flywheel story, shortened (5 s watched after full): real node processes, real signatures,
the real ledger, the driver playing the operator. Incidents at the hazard come first, the refined
release reaches full, none come after it, and the Proposer is the same process from start to end.
The driver stops every process it started whatever happens (its own finally), and this test checks
that the Proposer it reports is gone."""
from __future__ import annotations

import json
import os

import pytest

from flywheel.cli.story import run_story
from flywheel.story import HAZARD_ID

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f'/proc/{pid}/stat') as stat:           # a zombie is gone as far as ROS goes
        return stat.read().split(') ')[1][0] == 'Z'


def test_incidents_at_the_hazard_stop_after_full_and_the_proposer_is_never_restarted(tmp_path):
    code = run_story(tmp_path, watch_after=5.0)
    doc = json.loads((tmp_path / 'story.json').read_text())
    assert code == 0, doc['failed']
    f = doc['figures']
    assert f['hazard_incidents_before'] >= 1 and f['hazard_incidents_after'] == 0
    assert f['first_hazard_incident_s'] < f['full_rollout_s']
    assert f['first_incident_to_full_s'] <= 60.0
    assert f['proposer_pid_start'] == f['proposer_pid_end'] and gone(f['proposer_pid_start'])
    assert f['proposer_restarts'] == 0 and f['proposer_parameter_changes'] == 0
    assert f['basin_kept'] == f['basin_size'] > 0 and f['incidents_blocked'] >= 1
    # the very proposals of the pass: approved by release 1, every one blocked by the refined one.
    # None only when the recorder had heard none of them: the pass can come within the first
    # second of a new Proposer, before discovery has matched it to the recorder on a loaded
    # machine (seen once in the stress runs); test/test_story.py replays a pass without DDS.
    replayed = f['pass_replayed']
    if replayed is not None:
        assert replayed['approved_by_1.0.0'] >= 1 and replayed['approved_by_1.0.1'] == 0
    timeline = [(e['kind'], e['text']) for e in doc['timeline']]
    texts = [text for _, text in timeline]
    assert any(k == 'incident' and HAZARD_ID in t for k, t in timeline)
    for step in ('flywheel governance run', 'flywheel release sign release-2.tar.gz',
                 'flywheel release push release-2.tar.gz'):
        assert any(t.startswith(step) for t in texts), step
    stages = [t for k, t in timeline if k == 'stage']
    started = [s for s in stages if s.startswith('stage started 1.0.1 (release 2)')]
    assert [s.rsplit(' ', 1)[-1] for s in started] == ['shadow', 'canary']
    assert any(s.startswith('promoted: full 1.0.1') for s in stages)
    story = (tmp_path / 'story.md').read_text()
    assert '## Timeline' in story and 'first_incident_to_full_s' in story
    assert (tmp_path / 'demo-keys' / 'DEMO-KEYS.txt').read_text().startswith('DEMO KEYS')
