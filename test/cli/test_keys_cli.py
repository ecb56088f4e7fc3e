"""`flywheel keys init` provisions a robot; operators name its node keys in their own root with
`flywheel root init --oracle-key ...`, and a rotation keeps them unless it names new ones."""
from __future__ import annotations

import stat

from flywheel.auth import Keyring, load_message_key
from flywheel.cli.main import main
from flywheel.release.root import load_root


def test_keys_init_provisions_keys_and_a_root_naming_them(tmp_path):
    assert main(['keys', 'init', '--dir', str(tmp_path / 'keys')]) == 0
    keys = tmp_path / 'keys'
    ring = Keyring.from_root(load_root((keys / 'root.json').read_bytes()))
    oracle = load_message_key(keys / 'oracle.pem')
    assert ring.check('oracle', oracle.key_id, oracle.sign(b'x'), b'x') is None
    assert ring.check('governance', oracle.key_id, oracle.sign(b'x'), b'x') is not None
    assert ring.signs_proposals('proposer')
    verifier = load_message_key(keys / 'verifier.pem')
    assert ring.check('verifier', verifier.key_id, verifier.sign(b'x'), b'x') is None
    assert ring.check('oracle', verifier.key_id, verifier.sign(b'x'), b'x') is not None
    for name in ('operator.pem', 'oracle.pem', 'governance.pem', 'verifier.pem', 'proposer.pem'):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    # a second run changes nothing and says so
    assert main(['keys', 'init', '--dir', str(keys)]) == 0
    assert load_message_key(keys / 'oracle.pem').key_id == oracle.key_id


def test_operators_name_the_node_keys_in_their_root_and_rotations_keep_them(tmp_path):
    robot = tmp_path / 'robot'
    assert main(['keys', 'init', '--dir', str(robot)]) == 0
    for name in ('alice', 'bob'):
        assert main(['keygen', str(tmp_path / f'{name}.pem')]) == 0
    assert main(['root', 'init', '--key', str(tmp_path / 'alice.pub.json'), '--key',
                 str(tmp_path / 'bob.pub.json'), '--threshold', '2',
                 '--oracle-key', str(robot / 'oracle.pub.json'),
                 '--governance-key', str(robot / 'governance.pub.json'),
                 '--verifier-key', str(robot / 'verifier.pub.json'),
                 '--proposer-key', f'proposer={robot / "proposer.pub.json"}',
                 '--out', str(tmp_path / 'root.json')]) == 0
    ring = Keyring.from_root(load_root((tmp_path / 'root.json').read_bytes()))
    governance = load_message_key(robot / 'governance.pem')
    assert ring.check('governance', governance.key_id, governance.sign(b's'), b's') is None
    assert main(['root', 'rotate', '--old', str(tmp_path / 'root.json'), '--key',
                 str(tmp_path / 'alice.pub.json'), '--threshold', '1',
                 '--out', str(tmp_path / 'root-v2.json')]) == 0
    ring2 = Keyring.from_root(load_root((tmp_path / 'root-v2.json').read_bytes()))
    assert ring2.check('governance', governance.key_id, governance.sign(b's'), b's') is None
    verifier = load_message_key(robot / 'verifier.pem')
    for keyring in (ring, ring2):
        assert keyring.check('verifier', verifier.key_id, verifier.sign(b'a'), b'a') is None


def test_a_malformed_proposer_key_option_is_a_usage_error(tmp_path, capsys):
    assert main(['keygen', str(tmp_path / 'alice.pem')]) == 0
    assert main(['root', 'init', '--key', str(tmp_path / 'alice.pub.json'), '--threshold', '1',
                 '--proposer-key', 'no-equals-sign', '--out', str(tmp_path / 'r.json')]) == 2
    assert 'PROPOSER_ID=FILE' in capsys.readouterr().err
