"""A key id is derived from the key material, never taken from a file: one operator's key cannot
count twice toward a threshold."""
import json
from datetime import timedelta

import pytest

from flywheel.errors import DuplicateKeyError, InputError, KeyIdMismatchError, OperatorKeyError
from flywheel.release.keys import generate_key, load_public, load_signer
from flywheel.release.root import load_root, new_root
from test.release.conftest import NOW, signed_root_dict


def forged(tmp_path, name: str, keyid: str) -> str:
    """alice's public key file, relabelled with another key id."""
    doc = json.loads((tmp_path / 'keys' / 'alice.pub.json').read_text())
    doc['keyid'] = keyid
    path = tmp_path / 'keys' / f'{name}.pub.json'
    path.write_text(json.dumps(doc))
    return path


def test_a_public_key_file_loads_with_its_derived_id(operators, tmp_path):
    assert load_public(tmp_path / 'keys' / 'alice.pub.json').keyid == operators[0][1].keyid


def test_a_key_file_whose_id_is_not_its_material(operators, tmp_path):
    path = forged(tmp_path, 'mallory', 'ab' * 32)
    with pytest.raises(KeyIdMismatchError, match='ab' * 32):
        load_public(path)


def test_the_same_key_twice_makes_no_root(operators, tmp_path):
    copy = tmp_path / 'keys' / 'alice-again.pub.json'
    copy.write_text((tmp_path / 'keys' / 'alice.pub.json').read_text())
    keys = [load_public(tmp_path / 'keys' / 'alice.pub.json'), load_public(copy),
            operators[1][1]]
    with pytest.raises(DuplicateKeyError):
        new_root(keys, 2, 2, NOW + timedelta(days=1))


def test_a_root_listing_one_key_under_two_ids_is_refused(operators):
    """Signed by the threshold, yet alice alone would meet 2-of-3: refused on load."""
    md = new_root([p for _, p in operators], 2, 2, NOW + timedelta(days=365))
    doc = md.to_dict()
    alice = operators[0][1].keyid
    doc['signed']['keys']['cd' * 32] = doc['signed']['keys'][alice]
    for role in doc['signed']['roles'].values():
        role['keyids'] = [alice, 'cd' * 32, operators[1][1].keyid]
    with pytest.raises(KeyIdMismatchError):
        load_root(signed_root_dict(doc, [s for s, _ in operators[:2]]))


def test_a_key_that_is_not_ed25519(operators, tmp_path):
    path = tmp_path / 'rsa.pub.json'
    path.write_text(json.dumps({'keyid': 'ab' * 32, 'keytype': 'rsa', 'scheme': 'rsassa-pss-sha256',
                                'keyval': {'public': 'x'}}))
    with pytest.raises(OperatorKeyError, match='not an Ed25519 key'):
        load_public(path)


def test_a_missing_key_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        load_signer(tmp_path / 'nope.pem')
    with pytest.raises(InputError):
        load_public(tmp_path / 'nope.pub.json')


def test_generated_keys_still_load(tmp_path):
    key = generate_key(tmp_path / 'dave.pem')
    assert load_signer(tmp_path / 'dave.pem').public_key.keyid == key.keyid
