"""The operator's offline release commands, as run on a laptop without ROS."""
import json

import pytest

from flywheel.cli.main import main
from test.conftest import CONFIG


@pytest.fixture
def desk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ('alice', 'bob', 'carol'):
        assert main(['keygen', f'{name}.pem']) == 0
    assert main(['root', 'init', '--key', 'alice.pub.json', '--key', 'bob.pub.json', '--key',
                 'carol.pub.json', '--threshold', '2', '--out', 'root.json']) == 0
    for name in ('alice', 'bob'):
        assert main(['root', 'sign', 'root.json', '--key', f'{name}.pem']) == 0
    (tmp_path / 'spec.yaml').write_text((CONFIG / 'oracle_spec.yaml').read_text().replace(
        'version: "1.0.0"', 'version: "1.1.0"', 1))
    return tmp_path


def test_keygen_refuses_to_overwrite_a_key(desk, capsys):
    assert main(['keygen', 'alice.pem']) == 2
    assert 'refusing to overwrite' in capsys.readouterr().err
    assert json.loads((desk / 'alice.pub.json').read_text())['keytype'] == 'ed25519'


def test_build_sign_verify(desk, capsys):
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--version', '1.1.0',
                 '--out', 'r2.tar.gz']) == 0
    assert main(['release', 'sign', 'r2.tar.gz', '--key', 'alice.pem']) == 0
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json']) == 1
    assert 'threshold 2' in capsys.readouterr().err
    assert main(['release', 'sign', 'r2.tar.gz', '--key', 'carol.pem']) == 0
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json', '--installed', '1']) == 0
    assert 'OK: Oracle 1.1.0' in capsys.readouterr().out
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json', '--installed', '2']) == 1


def test_build_checks_the_version_against_the_spec(desk, capsys):
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--version', '2.0.0',
                 '--out', 'x.tar.gz']) == 1
    assert "the spec says '1.1.0'" in capsys.readouterr().err


def test_a_malformed_spec_is_refused_at_build(desk, capsys):
    (desk / 'bad.yaml').write_text('version: "1"\nfootprint: [[0, 0]]\n')
    assert main(['release', 'build', 'bad.yaml', '--number', '2', '--out', 'x.tar.gz']) == 1
    assert 'oracle_spec.yaml' in capsys.readouterr().err


def test_root_rotation_needs_old_and_new_signatures(desk, capsys):
    assert main(['keygen', 'dave.pem']) == 0
    assert main(['root', 'rotate', '--old', 'root.json', '--key', 'bob.pub.json', '--key',
                 'carol.pub.json', '--key', 'dave.pub.json', '--threshold', '2',
                 '--out', 'root2.json']) == 0
    for name in ('carol', 'dave'):
        assert main(['root', 'sign', 'root2.json', '--key', f'{name}.pem']) == 0
    assert main(['root', 'verify', 'root2.json', '--old', 'root.json']) == 1   # old: carol only
    assert main(['root', 'sign', 'root2.json', '--key', 'alice.pem']) == 0
    assert main(['root', 'verify', 'root2.json', '--old', 'root.json']) == 0
    assert 'may replace v1' in capsys.readouterr().out


def test_a_missing_file_is_a_clear_error(desk, capsys):
    assert main(['release', 'verify', 'nope.tar.gz', '--root', 'root.json']) == 2
    assert 'nope.tar.gz' in capsys.readouterr().err
