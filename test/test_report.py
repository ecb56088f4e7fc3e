import json
from collections import Counter

from flywheel.report import RunRecord, hidden_hazards, table, write_report
from flywheel.sim.world import load_world
from test.conftest import CONFIG


def test_only_the_stray_pallet_is_unknown_to_the_oracle(spec):
    assert hidden_hazards(load_world(CONFIG / 'world.yaml'), spec) == {'stray_pallet'}


def test_report_writes_a_summary_and_a_map(tmp_path, spec):
    gated = RunRecord('gated', 30.0, 10, Counter(ALLOW=7, BLOCK=3), Counter(NON_FINITE=3), [],
                      [('shelf_a', 3.6, 2.2)], [(1.5, 1.0), (2.0, 1.0)], [[(2, 1), (3, 2)]])
    bypass = RunRecord('bypass', 30.0, 10, collisions=[('shelf_a', 4.0, 2.3)],
                       path=[(1.5, 1.0), (4.0, 2.3)])
    summary, picture = write_report(tmp_path, [gated, bypass], load_world(CONFIG / 'world.yaml'),
                                    spec, {'seed': 1})
    doc = json.loads(summary.read_text())
    assert [r['collisions'] for r in doc['runs']] == [0, 1]
    assert doc['runs'][0]['decisions']['BLOCK'] == 3
    assert doc['runs'][0]['distance_travelled_m'] == 0.5
    assert picture.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and picture.stat().st_size > 10_000
    text = table([gated, bypass])
    assert 'decisions BLOCK' in text and 'undecided' in text and text.count('\n') == 11
