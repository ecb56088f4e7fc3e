"""Governance without ROS: install, refuse (active untouched), restart, signed rollback."""
import secrets
from datetime import timedelta

import pytest

from flywheel.errors import (ExpiredReleaseError, ReleaseError, RollbackError, RootRotationError,
                             UnsignedReleaseError)
from flywheel.release.bundle import build_bundle, sign_bundle
from flywheel.release.governor import Governor, RollbackRequest, rollback_message
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import new_root, sign
from flywheel.release.store import ReleaseStore
from test.release.conftest import LATER, NOW, spec_bytes


def release(operators, number, version, count=2, root=None):
    bundle = build_bundle(spec_bytes(version), number, LATER, root=root)
    for signer, _ in operators[:count]:
        bundle = sign_bundle(bundle, signer)
    return bundle


@pytest.fixture
def governor(tmp_path, root):
    g = Governor(ReleaseStore(tmp_path / 'store'))
    g.load(NOW, root.to_bytes())
    return g


def test_install_and_keep_the_previous(governor, operators):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    r2 = governor.submit(release(operators, 2, '1.1.0'), NOW)
    assert governor.active == r2 and governor.previous.oracle_version == '1.0.0'


def test_a_refused_release_leaves_the_active_one_untouched(governor, operators):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    with pytest.raises(UnsignedReleaseError):
        governor.submit(release(operators, 2, '1.1.0', count=1), NOW)
    assert governor.active.oracle_version == '1.0.0'
    assert governor.last_rejection.startswith('UnsignedReleaseError')


def test_replaying_an_installed_release_is_refused(governor, operators):
    bundle = release(operators, 1, '1.0.0')
    governor.submit(bundle, NOW)
    with pytest.raises(RollbackError):
        governor.submit(bundle, NOW)


def test_a_restart_comes_back_to_the_active_release(governor, operators, tmp_path):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    governor.submit(release(operators, 2, '1.1.0'), NOW)
    again = Governor(ReleaseStore(tmp_path / 'store'))
    again.load(NOW, None)               # the store's root; no bootstrap needed any more
    assert again.active.number == 2 and again.previous.number == 1


def test_first_start_needs_a_root(tmp_path):
    with pytest.raises(ReleaseError, match='no trust root'):
        Governor(ReleaseStore(tmp_path / 'empty')).load(NOW, None)


def test_an_expired_active_release_fails_the_restart(governor, operators, tmp_path):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    with pytest.raises(ExpiredReleaseError):
        Governor(ReleaseStore(tmp_path / 'store')).load(LATER + timedelta(days=1), None)


def rollback_request(signer, to_number, nonce=None, expires=NOW + timedelta(minutes=5)):
    nonce = nonce or secrets.token_hex(8)
    expires_ns = int(expires.timestamp() * 1e9)
    signature = signer.sign(rollback_message(nonce, expires_ns, to_number)).signature
    return RollbackRequest(signer.public_key.keyid, nonce, expires_ns, to_number, signature)


@pytest.fixture
def two_installed(governor, operators):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    governor.submit(release(operators, 2, '1.1.0'), NOW)
    return governor


def test_a_signed_rollback(two_installed, operators):
    back = two_installed.rollback(rollback_request(operators[0][0], 1), NOW)
    assert back.oracle_version == '1.0.0' and two_installed.active.number == 1
    assert two_installed.previous is None


def test_a_rolled_back_release_number_stays_burnt(two_installed, operators):
    two_installed.rollback(rollback_request(operators[0][0], 1), NOW)
    with pytest.raises(RollbackError):
        two_installed.submit(release(operators, 2, '1.1.0'), NOW)


def test_rollback_by_a_stranger(two_installed, tmp_path):
    generate_key(tmp_path / 'mallory.pem')
    with pytest.raises(UnsignedReleaseError, match='not a root operator key'):
        two_installed.rollback(rollback_request(load_signer(tmp_path / 'mallory.pem'), 1), NOW)


def test_rollback_with_a_forged_signature(two_installed, operators):
    request = rollback_request(operators[0][0], 1)
    forged = RollbackRequest(request.key_id, request.nonce, request.expires_ns, 1, '00' * 64)
    with pytest.raises(UnsignedReleaseError, match='bad signature'):
        two_installed.rollback(forged, NOW)


def test_rollback_request_replayed(two_installed, operators):
    request = rollback_request(operators[0][0], 1, nonce='n-1')
    two_installed.rollback(request, NOW)
    two_installed.submit(release(operators, 3, '1.2.0'), NOW)
    with pytest.raises(RollbackError, match='nonce already used'):
        two_installed.rollback(request, NOW)


def test_expired_rollback_request(two_installed, operators):
    with pytest.raises(RollbackError, match='expired'):
        two_installed.rollback(rollback_request(operators[0][0], 1,
                                                expires=NOW - timedelta(seconds=1)), NOW)


def test_rollback_to_a_release_that_is_not_the_previous(two_installed, operators):
    with pytest.raises(RollbackError, match='retained previous release is 1'):
        two_installed.rollback(rollback_request(operators[0][0], 7), NOW)


def test_a_release_may_carry_a_rotated_root(governor, operators, tmp_path):
    generate_key(tmp_path / 'dave.pem')
    dave = load_signer(tmp_path / 'dave.pem')
    keys = [p for _, p in operators[1:]] + [dave.public_key]
    v2 = new_root(keys, 2, 2, NOW + timedelta(days=365), version=2)
    for signer in (operators[0][0], operators[1][0], dave):
        sign(v2, signer)
    bundle = build_bundle(spec_bytes('1.1.0'), 1, LATER, root=v2.to_bytes())
    for signer in (operators[1][0], dave):          # signed under the new root's keys
        bundle = sign_bundle(bundle, signer)
    governor.submit(bundle, NOW)
    assert governor.root.signed.version == 2 and governor.active.oracle_version == '1.1.0'


def test_a_rotation_without_the_old_threshold_is_refused(governor, operators, tmp_path):
    generate_key(tmp_path / 'mallory.pem')
    mallory = load_signer(tmp_path / 'mallory.pem')
    v2 = new_root([mallory.public_key], 1, 1, NOW + timedelta(days=365), version=2)
    sign(v2, mallory)
    bundle = sign_bundle(build_bundle(spec_bytes('6.6.6'), 1, LATER, root=v2.to_bytes()), mallory)
    with pytest.raises((RootRotationError, UnsignedReleaseError)):
        governor.submit(bundle, NOW)
    assert governor.root.signed.version == 1 and governor.active is None
