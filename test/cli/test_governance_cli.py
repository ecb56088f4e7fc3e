"""`flywheel governance run|candidates` end to end on a temporary ledger and spec: a candidate
written unsigned with its evidence, listed, buildable as a release; errors as exit codes."""
import json

import pytest

from flywheel.audit.incident import IncidentReport, Severity
from flywheel.audit.keys import load_or_create_key
from flywheel.audit.ledger import Ledger
from flywheel.audit.trail import AuditTrail
from flywheel.cli.main import main
from test.conftest import CONFIG

S = 1_000_000_000
T0 = 1_795_000_000 * S


@pytest.fixture
def ledger(tmp_path):
    """A ledger holding collisions and a near-miss at the stray pallet the spec lacks."""
    path = tmp_path / 'audit.sqlite'
    trail = AuditTrail(Ledger(path, load_or_create_key(tmp_path / 'audit.pem')), 'map', 5.0)
    for i, (x, y, severity) in enumerate([(11.0, 7.2, Severity.COLLISION),
                                          (11.05, 7.0, Severity.COLLISION),
                                          (10.9, 7.4, Severity.NEAR_MISS)]):
        trail.incident(IncidentReport(T0 + i * S, 'map', severity, x, y, 'stray_pallet', 0.05,
                                      'sim', 'hit the pallet'), T0 + 10 * S, 'test')
    trail.ledger.close()
    return path


def run(ledger, out, *extra):
    return main(['governance', 'run', '--ledger', str(ledger), '--spec',
                 str(CONFIG / 'oracle_spec.yaml'), '--out', str(out), '--seed', '2',
                 '--probes', '600', '--basin-size', '60', *extra])


def test_a_run_writes_an_unsigned_candidate_that_builds_as_a_release(ledger, tmp_path, capsys):
    out = tmp_path / 'candidates'
    assert run(ledger, out) == 0
    where = out / '1.0.1'
    assert sorted(p.name for p in where.iterdir()) == [
        'basin.yaml', 'batch.json', 'flaws.json', 'oracle_spec.yaml', 'regression.yaml',
        'rollout.yaml']
    batch = json.loads((where / 'batch.json').read_text())
    assert batch['signed'] is False and batch['parent_version'] == '1.0.0'
    assert batch['evidence']['incidents'] == {'total': 3, 'blocked': 3}
    assert batch['evidence']['basin']['kept'] == batch['evidence']['basin']['size'] == 60
    assert 'flaws blocked' in capsys.readouterr().out
    assert main(['governance', 'candidates', str(out)]) == 0
    listed = capsys.readouterr()
    assert '1.0.1 (from 1.0.0)' in listed.out and 'add_keep_out' in listed.out
    assert '(1 candidates' in listed.err
    assert main(['governance', 'candidates', str(out), '--json']) == 0
    assert json.loads(capsys.readouterr().out)['candidate_version'] == '1.0.1'
    bundle = tmp_path / 'release.tar.gz'
    assert main(['release', 'build', str(where / 'oracle_spec.yaml'), '--number', '2',
                 '--plan', str(where / 'rollout.yaml'), '--regression',
                 str(where / 'regression.yaml'), '--parent', '1.0.0', '--out',
                 str(bundle)]) == 0


def test_the_next_run_counts_the_basin_from_the_first_release(ledger, tmp_path):
    out = tmp_path / 'candidates'
    assert run(ledger, out) == 0
    first = out / '1.0.1'
    nxt = tmp_path / 'next'
    assert main(['governance', 'run', '--ledger', str(ledger), '--spec',
                 str(first / 'oracle_spec.yaml'), '--out', str(nxt), '--seed', '3', '--probes',
                 '300', '--basin', str(first / 'basin.yaml')]) in (0, 1)
    for batch in nxt.glob('*/batch.json'):
        assert json.loads(batch.read_text())['evidence']['basin']['first_version'] == '1.0.0'


def test_a_candidate_already_written_is_not_overwritten(ledger, tmp_path, capsys):
    out = tmp_path / 'candidates'
    assert run(ledger, out) == 0
    assert run(ledger, out) == 2
    assert 'exists' in capsys.readouterr().err


def test_a_malformed_spec_is_a_usage_error(ledger, tmp_path, capsys):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('version: "2"\nframe_id: map\n')
    assert main(['governance', 'run', '--ledger', str(ledger), '--spec', str(bad), '--out',
                 str(tmp_path / 'c')]) == 2
    assert 'flywheel governance' in capsys.readouterr().err


def test_a_missing_ledger_or_directory_is_a_usage_error(tmp_path):
    assert main(['governance', 'run', '--ledger', str(tmp_path / 'none.sqlite'), '--spec',
                 str(CONFIG / 'oracle_spec.yaml'), '--out', str(tmp_path / 'c')]) == 2
    assert main(['governance', 'candidates', str(tmp_path / 'none')]) == 2


def test_a_bad_option_is_a_usage_error(ledger, tmp_path):
    assert run(ledger, tmp_path / 'c', '--probes', '0') == 2
