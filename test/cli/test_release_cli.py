"""The operator's release commands, as run on a laptop without ROS (the push and status tests
replace the one service call; no ROS process is started)."""
import argparse
import json

import pytest

from flywheel.cli.main import build_parser, exit_code, main
from flywheel.errors import (NodeTimeoutError, NodeUnreachableError, InputError,
                             UnsignedReleaseError)
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
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json', '--installed', '1']) == 1
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
    assert main(['release', 'verify', 'nope.tar.gz', '--root', 'root.json', '--installed',
                 '0']) == 2
    assert 'nope.tar.gz' in capsys.readouterr().err


# -- the operator CLI without traps ------------------------------------------------------------

def test_help_is_for_operators_and_documents_the_exit_codes(capsys):
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    assert 'main(argv)' not in out and 'release push' in out
    assert 'exit codes:' in out and '3  governance unreachable' in out


def every_option(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_option(child, path + (name,))
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_release_option_has_help():
    owned = {'keygen', 'release', 'root', 'status', 'rollback', 'up', 'demo'}
    missing = [(' '.join(path), action.dest) for path, action in every_option(build_parser())
               if path and path[0] in owned and not action.help]
    assert missing == []


def test_one_map_from_errors_to_exit_codes():
    assert exit_code(UnsignedReleaseError('x')) == 1
    assert exit_code(InputError('x')) == 2
    assert exit_code(NodeUnreachableError('x')) == 3
    assert exit_code(NodeTimeoutError('x')) == 3


def test_root_verify_needs_old_or_first_install(desk, capsys):
    """A self-signed attacker root used to print OK."""
    assert main(['root', 'verify', 'root.json']) == 2
    assert '--old --first-install' in capsys.readouterr().err


def test_root_verify_first_install_says_what_it_did_not_check(desk, capsys):
    assert main(['root', 'verify', 'root.json', '--first-install']) == 0
    out = capsys.readouterr().out
    assert 'Only self-consistency was checked' in out
    assert json.loads((desk / 'alice.pub.json').read_text())['keyid'] in out


@pytest.mark.parametrize('argv, problem', [
    (['release', 'build', 'spec.yaml', '--number', '2', '--expires-days', '-1', '--out', 'x'],
     'must be in (0, 3650]'),
    (['release', 'build', 'spec.yaml', '--number', '2', '--expires-days', 'nan', '--out', 'x'],
     'must be in (0, 3650]'),
    (['release', 'build', 'spec.yaml', '--number', str(2**64), '--out', 'x'],
     'must be in 1..9223372036854775807'),
    (['release', 'build', 'spec.yaml', '--number', '0', '--out', 'x'], 'must be in 1..'),
    (['release', 'verify', 'r.tar.gz', '--root', 'root.json'], 'one of the arguments'),
    (['release', 'verify', 'r.tar.gz', '--root', 'root.json', '--installed', '-1'],
     'must be in 0..'),
    (['root', 'init', '--key', 'alice.pub.json', '--threshold', '0', '--out', 'x'],
     'must be in 1..'),
    (['release', 'push', 'r.tar.gz', '--timeout', '0'], 'must be in (0, 3600]'),
])
def test_bad_numbers_are_usage_errors(desk, capsys, argv, problem):
    assert main(argv) == 2
    assert problem in capsys.readouterr().err


def test_verify_reads_the_installed_number_from_a_status_file(desk, capsys):
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--out', 'r2.tar.gz']) == 0
    for name in ('alice', 'bob'):
        assert main(['release', 'sign', 'r2.tar.gz', '--key', f'{name}.pem']) == 0
    (desk / 'status.json').write_text(json.dumps({'active_number': 2, 'previous_number': 1}))
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json', '--status',
                 'status.json']) == 1
    assert 'not newer than the installed 2' in capsys.readouterr().err
    (desk / 'status.json').write_text(json.dumps({'installed_max': 1}))
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json', '--status',
                 'status.json']) == 0
    (desk / 'status.json').write_text('[]')
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json', '--status',
                 'status.json']) == 2


def test_root_init_refuses_a_key_file_under_another_id(desk, capsys):
    """alice's key relabelled as 'mallory' would let alice alone meet 2-of-3."""
    doc = json.loads((desk / 'alice.pub.json').read_text())
    doc['keyid'] = 'ab' * 32
    (desk / 'mallory.pub.json').write_text(json.dumps(doc))
    assert main(['root', 'init', '--key', 'alice.pub.json', '--key', 'mallory.pub.json',
                 '--key', 'bob.pub.json', '--threshold', '2', '--out', 'evil.json']) == 1
    assert 'is not the id of its key material' in capsys.readouterr().err
    assert not (desk / 'evil.json').exists()


def test_root_init_refuses_the_same_key_twice(desk, capsys):
    (desk / 'alice2.pub.json').write_text((desk / 'alice.pub.json').read_text())
    assert main(['root', 'init', '--key', 'alice.pub.json', '--key', 'alice2.pub.json',
                 '--threshold', '2', '--out', 'evil.json']) == 1
    assert 'listed twice' in capsys.readouterr().err


def test_a_missing_key_is_a_usage_error_like_a_missing_bundle(desk, capsys):
    assert main(['release', 'sign', 'spec.yaml', '--key', 'nope.pem']) == 2
    assert 'nope.pem' in capsys.readouterr().err


@pytest.fixture
def no_governance(monkeypatch):
    """release_client._call as it behaves when governance is slow or absent (no ROS started)."""
    from flywheel.ros import release_client

    def call(error):
        def fake(*_):
            raise error
        monkeypatch.setattr(release_client, '_call', fake)
    return call


def test_push_that_times_out_says_it_may_still_install(desk, capsys, no_governance):
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--out', 'r2.tar.gz']) == 0
    no_governance(NodeTimeoutError('governance/submit_release: no answer within 0.5 s'))
    assert main(['release', 'push', 'r2.tar.gz', '--timeout', '0.5']) == 3
    err = capsys.readouterr().err
    assert 'waiting up to 0.5 s' in err                 # progress before the wait
    assert 'still be verifying' in err and '`flywheel status`' in err


def test_push_without_governance_is_exit_3(desk, capsys, no_governance):
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--out', 'r2.tar.gz']) == 0
    no_governance(NodeUnreachableError('no governance node answers'))
    assert main(['release', 'push', 'r2.tar.gz']) == 3
    assert main(['status']) == 3


def test_status_json_feeds_release_verify(desk, capsys, monkeypatch):
    from alignment_flywheel.srv import GetStatus
    from flywheel.ros import release_client
    reply = GetStatus.Response()
    reply.status.state, reply.status.active_number, reply.status.previous_number = 'active', 2, 1
    reply.status.active_version, reply.status.installed_max = '1.1.0', 2
    monkeypatch.setattr(release_client, '_call', lambda *_: reply)
    assert main(['status', '--json']) == 0
    status = json.loads(capsys.readouterr().out)
    assert status['active_number'] == 2 and status['state'] == 'active'
    (desk / 'status.json').write_text(json.dumps(status))
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--out', 'r2.tar.gz']) == 0
    for name in ('alice', 'bob'):
        assert main(['release', 'sign', 'r2.tar.gz', '--key', f'{name}.pem']) == 0
    assert main(['release', 'verify', 'r2.tar.gz', '--root', 'root.json', '--status',
                 'status.json']) == 1                  # release 2 is installed: a replay
