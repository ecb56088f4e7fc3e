"""Governance without ROS: install, refuse (active untouched), restart, signed rollback."""
import hashlib
import json
import secrets
from datetime import timedelta

import pytest

from flywheel.errors import (BadReleaseNumberError, CorruptBundleError, ReleaseError,
                             RollbackError, RootRotationError, StoreError, UnsignedReleaseError)
from flywheel.release.bundle import build_bundle, sign_bundle
from flywheel.release.governor import (Governor, NoticeKind, RollbackRequest,
                                       rollback_message)
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import new_root, sign
from flywheel.release.store import ReleaseStore, StoreState
from test.release.conftest import LATER, NOW, craft, spec_bytes


@pytest.fixture
def dave_signer(tmp_path):
    generate_key(tmp_path / 'dave.pem')
    return load_signer(tmp_path / 'dave.pem')


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


def test_an_expired_active_release_comes_back_marked_expired(governor, operators, tmp_path):
    """Not a crash (the node could then never say why the robot is stopped), not a silent
    acceptance: loaded, reported, and refused by active_expired()."""
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    again = Governor(ReleaseStore(tmp_path / 'store'))
    notices = again.load(LATER + timedelta(days=1), None)
    assert again.active.number == 1 and again.active_expired(LATER + timedelta(days=1))
    assert [n.kind for n in notices] == [NoticeKind.ACTIVE_EXPIRED]
    assert notices[0].number == 1 and notices[0].bundle_sha256 == again.active.bundle_sha256
    assert not again.active_expired(NOW)


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


# -- restarts never brick governance, never fail open ---------------------------------------

def fully_rotated(operators, tmp_path):
    """Root v2 with three new keys (none of v1's), signed by v1's and v2's thresholds."""
    fresh = []
    for name in ('dave', 'erin', 'frank'):
        generate_key(tmp_path / f'{name}.pem')
        fresh.append(load_signer(tmp_path / f'{name}.pem'))
    v2 = new_root([s.public_key for s in fresh], 2, 2, NOW + timedelta(days=365), version=2)
    for signer in (operators[0][0], operators[1][0], fresh[0], fresh[1]):
        sign(v2, signer)
    return v2, fresh


def test_a_restart_after_a_full_key_rotation(governor, operators, tmp_path):
    """Release 1 was signed by keys the trust root no longer names: it is verified against the
    root that verified it on install, and stays the rollback target."""
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    v2, fresh = fully_rotated(operators, tmp_path)
    bundle = build_bundle(spec_bytes('1.1.0'), 2, LATER, root=v2.to_bytes())
    for signer in fresh[:2]:
        bundle = sign_bundle(bundle, signer)
    governor.submit(bundle, NOW)
    again = Governor(ReleaseStore(tmp_path / 'store'))
    assert again.load(NOW, None) == ()
    assert again.root.signed.version == 2
    assert (again.active.number, again.previous.number) == (2, 1)
    assert (again.active.root_version, again.previous.root_version) == (2, 1)
    assert again.rollback(rollback_request(fresh[2], 1), NOW).oracle_version == '1.0.0'


def test_a_restart_after_the_previous_release_expired(governor, operators, tmp_path):
    """The previous release leaves the rollback slot, with a notice saying why; the active one
    comes back."""
    first = build_bundle(spec_bytes('1.0.0'), 1, NOW + timedelta(days=1))
    for signer, _ in operators[:2]:
        first = sign_bundle(first, signer)
    governor.submit(first, NOW)
    governor.submit(release(operators, 2, '1.1.0'), NOW)
    later = NOW + timedelta(days=2)
    again = Governor(ReleaseStore(tmp_path / 'store'))
    notices = again.load(later, None)
    assert again.active.number == 2 and again.previous is None
    assert [(n.kind, n.number) for n in notices] == [(NoticeKind.PREVIOUS_DROPPED, 1)]
    assert notices[0].reason.startswith('ExpiredReleaseError')
    assert notices[0].bundle_sha256 == hashlib.sha256(first).hexdigest()
    assert ReleaseStore(tmp_path / 'store').state().previous is None      # recorded once
    assert Governor(ReleaseStore(tmp_path / 'store')).load(later, None) == ()
    with pytest.raises(RollbackError, match='previous release is none'):
        again.rollback(rollback_request(operators[0][0], 1, expires=later + timedelta(minutes=1)),
                       later)


def test_a_store_written_before_roots_were_recorded(operators, root, tmp_path):
    """state.json without root versions, the old root as root.v1.json (as the old store wrote
    it): both releases come back, each against the root that signs it."""
    store = ReleaseStore(tmp_path / 'store')
    g = Governor(store)
    g.load(NOW, root.to_bytes())
    g.submit(release(operators, 1, '1.0.0'), NOW)
    v2, fresh = fully_rotated(operators, tmp_path)
    bundle = build_bundle(spec_bytes('1.1.0'), 2, LATER, root=v2.to_bytes())
    for signer in fresh[:2]:
        bundle = sign_bundle(bundle, signer)
    g.submit(bundle, NOW)
    (store.dir / 'state.json').write_text(json.dumps({'active': 2, 'previous': 1,
                                                      'installed_max': 2, 'nonces': []}))
    (store.dir / 'root.v2.json').unlink()
    again = Governor(ReleaseStore(tmp_path / 'store'))
    assert again.load(NOW, None) == ()
    assert (again.active.root_version, again.previous.root_version) == (2, 1)


@pytest.mark.parametrize('content, problem', [
    ('{not json', 'unreadable release state'),
    ('{"active": 18446744073709551616, "installed_max": 1}', 'active'),
    ('{"active": true}', 'active'),
    ('{"installed_max": -1}', 'installed_max'),
    ('{"nonces": "x"}', 'nonces'),
    ('{"surprise": 1}', 'surprise'),
])
def test_a_corrupt_state_is_a_clear_error(governor, tmp_path, content, problem):
    (tmp_path / 'store' / 'state.json').write_text(content)
    with pytest.raises(StoreError, match=problem):
        Governor(ReleaseStore(tmp_path / 'store')).load(NOW, None)


def test_a_damaged_active_bundle_is_a_clear_error_not_a_fallback(governor, operators, tmp_path):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    governor.submit(release(operators, 2, '1.1.0'), NOW)
    path = tmp_path / 'store' / 'releases' / '2.tar.gz'
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StoreError, match='active release 2 .* no longer verifies'):
        Governor(ReleaseStore(tmp_path / 'store')).load(NOW, None)
    path.unlink()
    with pytest.raises(StoreError, match='release 2 is not in the store'):
        Governor(ReleaseStore(tmp_path / 'store')).load(NOW, None)


def test_a_release_numbered_2_to_the_64_never_reaches_the_state(governor, operators, tmp_path):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    before = (tmp_path / 'store' / 'state.json').read_bytes()
    with pytest.raises(BadReleaseNumberError):
        governor.submit(craft(operators, spec_bytes('6.6.6'), number=2**64), NOW)
    assert (tmp_path / 'store' / 'state.json').read_bytes() == before
    assert Governor(ReleaseStore(tmp_path / 'store')).load(NOW, None) == ()


def test_state_is_written_last(governor, operators, tmp_path, dave_signer, monkeypatch):
    """A failure while storing a rotation leaves state, root and active release as they were."""
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    before = (tmp_path / 'store' / 'state.json').read_bytes()
    v2 = new_root([p for _, p in operators[1:]] + [dave_signer.public_key], 2, 2,
                  NOW + timedelta(days=365), version=2)
    for signer in (operators[0][0], operators[1][0], dave_signer):
        sign(v2, signer)
    bundle = build_bundle(spec_bytes('1.1.0'), 2, LATER, root=v2.to_bytes())
    for signer in (operators[1][0], dave_signer):
        bundle = sign_bundle(bundle, signer)

    def disk_full(*_):
        raise StoreError('root.v2.json: cannot write (No space left on device)')
    monkeypatch.setattr(governor.store, 'add_root', disk_full)
    with pytest.raises(StoreError):
        governor.submit(bundle, NOW)
    assert (tmp_path / 'store' / 'state.json').read_bytes() == before
    assert governor.active.number == 1 and governor.root.signed.version == 1
    assert governor.last_rejection.startswith('StoreError')


# -- every refusal is reportable ------------------------------------------------------------

def test_a_refusal_carries_the_bundle_sha256_and_the_signers(governor, operators):
    bundle = release(operators, 1, '1.0.0', count=1)
    with pytest.raises(UnsignedReleaseError) as caught:
        governor.submit(bundle, NOW)
    sha = hashlib.sha256(bundle).hexdigest()
    alice = operators[0][0].public_key.keyid
    assert caught.value.bundle_sha256 == sha and caught.value.key_ids == (alice,)
    assert governor.last_rejection_sha256 == sha
    assert governor.last_rejection_actor == alice[:16]
    assert governor.last_refusal.error == 'UnsignedReleaseError'


def test_a_refusal_of_unreadable_bytes_still_names_them(governor):
    with pytest.raises(CorruptBundleError):
        governor.submit(b'not a bundle at all', NOW)
    assert governor.last_rejection_sha256 == hashlib.sha256(b'not a bundle at all').hexdigest()
    assert governor.last_rejection_actor == ''


def test_a_rollback_refusal_names_the_key(two_installed, operators):
    with pytest.raises(RollbackError):
        two_installed.rollback(rollback_request(operators[0][0], 7), NOW)
    assert two_installed.last_rejection_actor == operators[0][0].public_key.keyid[:16]


def test_a_rollback_request_valid_for_too_long(two_installed, operators):
    with pytest.raises(RollbackError, match='more than 3600 s'):
        two_installed.rollback(rollback_request(operators[0][0], 1,
                                                expires=NOW + timedelta(days=365)), NOW)


def test_a_stored_release_that_carried_an_unpinned_root_still_loads(governor, operators, root,
                                                                    tmp_path):
    """Stores written before carried roots had to be pinned keep working (a submission of such a
    bundle is refused: test_bundle.py)."""
    legacy = craft(operators, spec_bytes('1.0.0'), number=1, root=root.to_bytes(),
                   pin_root=False, version='1.0.0')
    store = ReleaseStore(tmp_path / 'store')
    store.add_bundle(1, legacy)
    store.save_state(StoreState(active=1, installed_max=1))
    again = Governor(ReleaseStore(tmp_path / 'store'))
    assert again.load(NOW, None) == () and again.active.number == 1


def test_a_verification_overtaken_by_another_install_is_refused(governor, operators):
    """Governance verifies off the thread that answers status and rollback; what it verified
    against must still hold when it installs."""
    slow = governor.verify(release(operators, 3, '1.3.0'), NOW)
    governor.submit(release(operators, 4, '1.4.0'), NOW)
    with pytest.raises(RollbackError, match='changed while it was verified'):
        governor.install(release(operators, 3, '1.3.0'), slow)
    assert governor.active.number == 4
