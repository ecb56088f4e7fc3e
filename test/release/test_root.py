"""Trust-root rotation needs the threshold of the old keys and of the new keys."""
from datetime import timedelta

import pytest

from flywheel.errors import ExpiredReleaseError, ReleaseSchemaError, RootRotationError
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import check_self_signed, load_root, new_root, sign, verify_rotation
from test.release.conftest import NOW


@pytest.fixture
def dave(tmp_path):
    public = generate_key(tmp_path / 'dave.pem')
    return load_signer(tmp_path / 'dave.pem'), public


def rotated(operators, dave, signers):
    """v2: bob, carol, dave (alice retired), 2-of-3."""
    keys = [p for _, p in operators[1:]] + [dave[1]]
    md = new_root(keys, 2, 2, NOW + timedelta(days=365), version=2)
    for signer in signers:
        sign(md, signer)
    return md


def test_the_installed_root_is_self_signed(root):
    check_self_signed(root, NOW)
    assert load_root(root.to_bytes()).signed.version == 1


def test_rotation_signed_by_both_thresholds(operators, root, dave):
    alice, bob, carol = (s for s, _ in operators)
    verify_rotation(root, rotated(operators, dave, [alice, bob, dave[0]]), NOW)


def test_rotation_without_the_old_threshold(operators, root, dave):
    _, bob, carol = (s for s, _ in operators)
    # bob, carol and dave satisfy the new root; of the old keys bob and carol do too, so use
    # dave alone plus carol: old root sees 1 (carol) of 2
    with pytest.raises(RootRotationError, match='old root'):
        verify_rotation(root, rotated(operators, dave, [carol, dave[0]]), NOW)


def test_rotation_without_the_new_threshold(operators, root, dave):
    alice, bob, _ = (s for s, _ in operators)
    # alice and bob satisfy the old root; of the new keys only bob signed
    with pytest.raises(RootRotationError, match='new root'):
        verify_rotation(root, rotated(operators, dave, [alice, bob]), NOW)


def test_rotation_must_be_the_next_version(operators, root, dave):
    alice, bob, carol = (s for s, _ in operators)
    md = new_root([p for _, p in operators], 2, 2, NOW + timedelta(days=1), version=3)
    for signer in (alice, bob, carol):
        sign(md, signer)
    with pytest.raises(RootRotationError, match='expected 2'):
        verify_rotation(root, md, NOW)


def test_an_expired_new_root(operators, root):
    alice, bob, _ = (s for s, _ in operators)
    md = new_root([p for _, p in operators], 2, 2, NOW - timedelta(seconds=1), version=2)
    sign(md, alice)
    sign(md, bob)
    with pytest.raises(ExpiredReleaseError):
        verify_rotation(root, md, NOW)


def test_thresholds_must_fit_the_keys(operators):
    with pytest.raises(ReleaseSchemaError, match='threshold 4'):
        new_root([p for _, p in operators], 4, 1, NOW)


def test_an_under_signed_root_is_not_installed(operators):
    md = new_root([p for _, p in operators], 2, 2, NOW + timedelta(days=1))
    sign(md, operators[0][0])
    with pytest.raises(RootRotationError):
        check_self_signed(md, NOW)
