"""Governance without ROS: install, refuse (active untouched), restart, signed rollback."""
import hashlib
import json
import secrets
from datetime import timedelta

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.enforcement.decision import Action, Reason
from flywheel.enforcement.policy import load_policy
from flywheel.errors import (BadReleaseNumberError, CorruptBundleError, RegressionFailedError,
                             ReleaseError, RollbackError, RolloutError, RolloutRequiredError,
                             RootRotationError, StoreError, UnsignedReleaseError)
from flywheel.release.bundle import build_bundle, sign_bundle
from flywheel.release.governor import (Governor, NoticeKind, RollbackRequest, RolloutRequest,
                                       rollback_message, rollout_message)
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.rollout import (DEFAULT_PLAN, IMMEDIATE, EventKind, Observation, Outcome,
                                      OutcomeKind, RolloutPlan, Stage, StageRule)
from flywheel.release.root import new_root, sign
from flywheel.release.store import ReleaseStore, StoreState
from test.conftest import CONFIG
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
    """Releases without a plan install at once here (default plan [full]): these tests are about
    installing, refusing and rolling back; staged rollouts are tested at the end of this file."""
    g = Governor(ReleaseStore(tmp_path / 'store'), default_plan=IMMEDIATE)
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
    g = Governor(store, default_plan=IMMEDIATE)
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


# -- staged rollout (issue: a new Oracle must earn control) --------------------------------------

QUICK = StageRule(min_duration_s=1.0, min_samples=5, max_duration_s=10.0,
                  max_disagreement_rate=0.2, max_false_stop_rate=0.2, max_latency_p99_s=0.05)
PLAN = RolloutPlan((Stage.SHADOW, Stage.CANARY, Stage.FULL), (QUICK, QUICK))
SHELF_A = b'  - {id: shelf_a, polygon: [[4.0, 2.5], [5.0, 2.5], [5.0, 5.5], [4.0, 5.5]]}\n'
SUITE = b"""
golden:
  - {id: aisle_south, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
incidents:
  - {id: shelf_a_head_on, start: [3.0, 4.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
"""


def at(seconds: float):
    return NOW + timedelta(seconds=seconds)


def plan_yaml(plan: RolloutPlan) -> bytes:
    return yaml.safe_dump(plan.to_doc()).encode()


def carrying(operators, number, version, *, spec=None, expires=LATER, **members) -> bytes:
    bundle = build_bundle(spec or spec_bytes(version), number, expires, **members)
    for signer, _ in operators[:2]:
        bundle = sign_bundle(bundle, signer)
    return bundle


def governor_for(tmp_path, root=None, **options) -> Governor:
    g = Governor(ReleaseStore(tmp_path / 'store'), default_plan=options.pop('plan', PLAN),
                 policy=options.pop('policy', load_policy(CONFIG / 'policy.yaml')), **options)
    g.load(NOW, root.to_bytes() if root is not None else None)
    return g


@pytest.fixture
def staged(tmp_path, root, operators):
    """Release 1 active; release 2 (plan-less: the default plan) the candidate in shadow."""
    g = governor_for(tmp_path, root)
    g.submit(release(operators, 1, '1.0.0'), NOW)
    accepted = g.accept(release(operators, 2, '1.1.0'), g.verify(release(operators, 2, '1.1.0'),
                                                                 NOW), NOW)
    assert accepted.staged and [e.kind for e in accepted.events] == [EventKind.STAGE_STARTED]
    return g


def agree(g: Governor, n: int = 5, **changes) -> None:
    for _ in range(n):
        g.observe(Observation(**{'active_action': Action.ALLOW, 'candidate_action': Action.ALLOW,
                                 'candidate_evaluation_s': 0.01, 'stage': g.rollout.stage,
                                 **changes}))


def kinds(events):
    return [e.kind for e in events]


def restarted(tmp_path, at_time=NOW, **options) -> Governor:
    g = Governor(ReleaseStore(tmp_path / 'store'), default_plan=options.pop('plan', PLAN),
                 policy=load_policy(CONFIG / 'policy.yaml'), **options)
    g.load(at_time, None)
    return g


def test_a_release_without_a_plan_is_staged_not_installed(staged, tmp_path):
    assert staged.active.number == 1 and staged.candidate.number == 2
    assert staged.rollout.stage is Stage.SHADOW and not staged.rollout.enforces_candidate
    state = ReleaseStore(tmp_path / 'store').state()
    assert (state.active, state.candidate, state.installed_max) == (1, 2, 2)
    assert state.rollout['index'] == 0


def test_the_governors_default_plan_is_the_configured_default(tmp_path):
    assert Governor(ReleaseStore(tmp_path / 's')).default_plan == DEFAULT_PLAN


def test_a_signed_plan_of_full_alone_installs_at_once(staged, operators):
    bundle = carrying(operators, 3, '1.2.0', plan=b'stages: [full]\n')
    accepted = staged.accept(bundle, staged.verify(bundle, NOW), NOW)
    assert not accepted.staged and staged.active.number == 3 and staged.previous.number == 1
    assert kinds(accepted.events) == [EventKind.ABORTED]            # release 2 superseded
    assert 'superseded by release 3' in accepted.events[0].reason
    assert staged.candidate is None and staged.store.state().candidate is None


def test_the_first_release_installs_at_once_with_nothing_to_compare(tmp_path, root, operators):
    g = governor_for(tmp_path, root)
    g.submit(release(operators, 1, '1.0.0'), NOW)
    assert g.active.number == 1 and g.candidate is None


def test_install_refuses_to_skip_a_staged_plan(staged, operators):
    """The old install-at-once path cannot bypass the stages."""
    bundle = release(operators, 3, '1.2.0')
    with pytest.raises(RolloutRequiredError, match='staged rollout plan'):
        staged.install(bundle, staged.verify(bundle, NOW))
    assert staged.active.number == 1 and staged.last_refusal.error == 'RolloutRequiredError'


def test_the_stages_pass_and_the_candidate_becomes_active(staged, tmp_path):
    agree(staged)
    events = staged.tick(at(2))
    assert kinds(events) == [EventKind.STAGE_PASSED, EventKind.STAGE_STARTED]
    assert staged.rollout.stage is Stage.CANARY and staged.rollout.enforces_candidate
    assert staged.tick(at(2.5)) == ()                     # a fresh analysis, a fresh clock
    agree(staged)
    events = staged.tick(at(4))
    assert kinds(events) == [EventKind.STAGE_PASSED, EventKind.PROMOTED]
    assert (staged.active.number, staged.previous.number) == (2, 1)
    assert staged.candidate is None and staged.rollout is None
    state = ReleaseStore(tmp_path / 'store').state()
    assert (state.active, state.previous, state.candidate, state.rollout) == (2, 1, None, None)


def test_observations_of_the_previous_stage_do_not_count(staged):
    agree(staged)
    staged.tick(at(2))
    agree(staged, stage=Stage.SHADOW)
    assert staged.tick(at(4)) == () and staged.rollout.stage is Stage.CANARY


def test_an_unsafe_approval_aborts_to_the_active_release(staged, tmp_path):
    agree(staged, 1, active_action=Action.BLOCK, active_reasons=(Reason.COLLISION_RISK,))
    events = staged.tick(at(0.5))
    assert kinds(events) == [EventKind.STAGE_FAILED, EventKind.ABORTED]
    assert 'unsafe approval' in events[-1].reason and events[-1].metrics['unsafe'] == 1
    assert staged.active.number == 1 and staged.candidate is None and staged.rollout is None
    assert ReleaseStore(tmp_path / 'store').state().candidate is None
    assert staged.tick(at(1)) == ()


def test_an_inconclusive_stage_pauses_until_an_operator_promotes(staged, operators, tmp_path):
    agree(staged, 2)
    assert kinds(staged.tick(at(11))) == [EventKind.PAUSED] and staged.rollout.paused
    assert ReleaseStore(tmp_path / 'store').state().rollout['paused'] is True
    agree(staged, 10)
    assert staged.tick(at(12)) == ()                      # paused: only an operator moves it
    action, events = staged.rollout_request(rollout_request(operators[0][0], 'promote', 2),
                                            at(13))
    assert action == 'promote' and kinds(events) == [EventKind.STAGE_PASSED,
                                                      EventKind.STAGE_STARTED]
    assert staged.rollout.stage is Stage.CANARY and not staged.rollout.paused
    assert staged.active.number == 1


def test_an_operator_abort(staged, operators):
    action, events = staged.rollout_request(rollout_request(operators[1][0], 'abort', 2), at(1))
    assert action == 'abort' and kinds(events) == [EventKind.ABORTED]
    assert operators[1][0].public_key.keyid[:16] in events[0].reason
    assert staged.active.number == 1 and staged.candidate is None


def test_operator_promotes_reach_full_only_through_every_stage(staged, operators):
    staged.rollout_request(rollout_request(operators[0][0], 'promote', 2), at(1))
    assert staged.active.number == 1 and staged.rollout.stage is Stage.CANARY
    staged.rollout_request(rollout_request(operators[0][0], 'promote', 2), at(2))
    assert staged.active.number == 2 and staged.previous.number == 1


def test_the_candidates_expiry_aborts_its_rollout(tmp_path, root, operators):
    g = governor_for(tmp_path, root)
    g.submit(release(operators, 1, '1.0.0'), NOW)
    g.submit(carrying(operators, 2, '1.1.0', expires=at(60)), NOW)
    events = g.tick(at(61))
    assert kinds(events) == [EventKind.ABORTED] and 'expired' in events[0].reason
    assert g.active.number == 1 and g.candidate is None


def test_a_newer_release_supersedes_the_candidate(staged, operators):
    accepted = staged.accept(release(operators, 3, '1.2.0'),
                             staged.verify(release(operators, 3, '1.2.0'), NOW), at(1))
    assert kinds(accepted.events) == [EventKind.ABORTED, EventKind.STAGE_STARTED]
    assert (accepted.events[0].number, accepted.events[1].number) == (2, 3)
    assert staged.candidate.number == 3 and staged.active.number == 1


def test_a_release_carrying_its_own_plan_follows_it(staged, operators):
    shadow_only = RolloutPlan((Stage.SHADOW, Stage.FULL), (QUICK,))
    staged.submit(carrying(operators, 3, '1.2.0', plan=plan_yaml(shadow_only)), NOW)
    assert staged.rollout.plan == shadow_only
    agree(staged)
    assert kinds(staged.tick(at(2)))[-1] is EventKind.PROMOTED and staged.active.number == 3


# -- the regression suite ------------------------------------------------------------------------

def test_a_candidate_that_approves_a_known_collision_is_refused(staged, operators, tmp_path):
    forgot_shelf = spec_bytes('1.2.0').replace(SHELF_A, b'')
    bundle = carrying(operators, 3, '1.2.0', spec=forgot_shelf, regression=SUITE)
    before = (tmp_path / 'store' / 'state.json').read_bytes()
    with pytest.raises(RegressionFailedError, match='shelf_a_head_on: expected blocked, got '
                                                    'ALLOW') as caught:
        staged.submit(bundle, NOW)
    assert [f.case_id for f in caught.value.failures] == ['shelf_a_head_on']
    assert caught.value.bundle_sha256 == hashlib.sha256(bundle).hexdigest()
    assert (tmp_path / 'store' / 'state.json').read_bytes() == before
    assert staged.candidate.number == 2 and staged.active.number == 1
    assert staged.last_refusal.error == 'RegressionFailedError'


def test_a_candidate_that_blocks_a_golden_proposal_is_refused(staged, operators):
    zone = b'  - {id: loading_strip, polygon: [[1.5, 0.5], [2.5, 0.5], [2.5, 1.5], [1.5, 1.5]]}\n'
    over_route = spec_bytes('1.2.0').replace(b'keep_out:\n', b'keep_out:\n' + zone)
    with pytest.raises(RegressionFailedError, match='aisle_south: expected allowed'):
        staged.submit(carrying(operators, 3, '1.2.0', spec=over_route, regression=SUITE), NOW)


def test_a_suite_that_passes_lets_the_release_through(staged, operators):
    staged.submit(carrying(operators, 3, '1.2.0', regression=SUITE), NOW)
    assert staged.candidate.number == 3


def test_a_release_installed_at_once_must_pass_its_suite_too(tmp_path, root, operators):
    g = governor_for(tmp_path, root)
    forgot_shelf = spec_bytes('1.0.0').replace(SHELF_A, b'')
    with pytest.raises(RegressionFailedError):
        g.submit(carrying(operators, 1, '1.0.0', spec=forgot_shelf, regression=SUITE), NOW)
    assert g.active is None


def test_a_suite_without_a_policy_to_run_it_is_refused(tmp_path, root, operators):
    g = governor_for(tmp_path, root, policy=None)
    with pytest.raises(RegressionFailedError, match='no risk policy'):
        g.submit(carrying(operators, 1, '1.0.0', regression=SUITE), NOW)


# -- signed operator requests, checked like rollback ---------------------------------------------

def rollout_request(signer, action, number, nonce=None, expires=NOW + timedelta(minutes=5)):
    nonce = nonce or secrets.token_hex(8)
    expires_ns = int(expires.timestamp() * 1e9)
    signature = signer.sign(rollout_message(action, nonce, expires_ns, number)).signature
    return RolloutRequest(signer.public_key.keyid, action, nonce, expires_ns, number, signature)


def test_a_rollout_request_by_a_stranger(staged, tmp_path):
    generate_key(tmp_path / 'mallory.pem')
    with pytest.raises(UnsignedReleaseError, match='not a root operator key'):
        staged.rollout_request(rollout_request(load_signer(tmp_path / 'mallory.pem'), 'promote',
                                               2), NOW)
    assert staged.rollout.stage is Stage.SHADOW


def test_a_rollout_request_with_a_forged_signature(staged, operators):
    request = rollout_request(operators[0][0], 'abort', 2)
    promote = RolloutRequest(request.key_id, 'promote', request.nonce, request.expires_ns, 2,
                             request.signature)           # an abort's signature, now a promote
    with pytest.raises(UnsignedReleaseError, match='rollout: bad signature'):
        staged.rollout_request(promote, NOW)
    assert staged.rollout.stage is Stage.SHADOW


def test_a_rollback_signature_is_no_rollout_request(staged, operators):
    rollback = rollback_request(operators[0][0], 2, nonce='n-1')
    request = RolloutRequest(rollback.key_id, 'promote', 'n-1', rollback.expires_ns, 2,
                             rollback.signature)
    with pytest.raises(UnsignedReleaseError, match='bad signature'):
        staged.rollout_request(request, NOW)


def test_a_replayed_rollout_request(staged, operators):
    request = rollout_request(operators[0][0], 'promote', 2, nonce='n-7')
    staged.rollout_request(request, NOW)
    with pytest.raises(RolloutError, match='nonce already used'):
        staged.rollout_request(request, NOW)
    assert 'n-7' in staged.store.state().nonces and staged.rollout.stage is Stage.CANARY


def test_an_expired_rollout_request(staged, operators):
    with pytest.raises(RolloutError, match='expired'):
        staged.rollout_request(rollout_request(operators[0][0], 'promote', 2,
                                               expires=NOW - timedelta(seconds=1)), NOW)


def test_a_rollout_request_valid_for_too_long(staged, operators):
    with pytest.raises(RolloutError, match='more than 3600 s'):
        staged.rollout_request(rollout_request(operators[0][0], 'promote', 2,
                                               expires=NOW + timedelta(hours=2)), NOW)


def test_a_rollout_request_for_another_release(staged, operators):
    with pytest.raises(RolloutError, match='release in rollout is 2'):
        staged.rollout_request(rollout_request(operators[0][0], 'promote', 3), NOW)
    assert staged.last_rejection_actor == operators[0][0].public_key.keyid[:16]


def test_a_rollout_request_with_an_unknown_action(staged, operators):
    with pytest.raises(RolloutError, match="unknown action 'skip'"):
        staged.rollout_request(rollout_request(operators[0][0], 'skip', 2), NOW)


def test_a_rollout_request_with_no_rollout(governor, operators):
    governor.submit(release(operators, 1, '1.0.0'), NOW)
    with pytest.raises(RolloutError, match='release in rollout is none'):
        governor.rollout_request(rollout_request(operators[0][0], 'abort', 1), NOW)


# -- restarts: the rollout survives, resumes safe ------------------------------------------------

def test_a_restart_resumes_the_same_stage_with_its_clock_restarted(staged, tmp_path):
    agree(staged)
    staged.tick(at(2))                                    # now in canary since t=2
    again = restarted(tmp_path, at(30))
    assert again.candidate.number == 2 and again.rollout.stage is Stage.CANARY
    assert again.rollout.started_ns == staged.rollout.started_ns + 28 * 10**9
    assert [(n.kind, n.number) for n in again.notices] == [(NoticeKind.ROLLOUT_RESUMED, 2)]
    assert again.rollout.enforces_candidate and again.active.number == 1
    assert again.tick(at(30.5)) == ()                     # its analysis starts empty
    agree(again)
    assert kinds(again.tick(at(32)))[-1] is EventKind.PROMOTED


def test_a_paused_rollout_stays_paused_across_a_restart(staged, tmp_path):
    staged.tick(at(11))
    again = restarted(tmp_path, at(20))
    assert again.rollout.paused and again.rollout.stage is Stage.SHADOW
    assert 'paused' in again.notices[0].reason
    agree(again, 10)
    assert again.tick(at(40)) == ()


def test_a_kill_during_promotion_comes_back_before_it(staged, tmp_path, monkeypatch):
    """kill -9 as the promotion is written: the state on disk is the one before it."""
    agree(staged)
    staged.tick(at(2))
    agree(staged)

    def killed(_state):
        raise StoreError('state.json: cannot write (killed)')
    monkeypatch.setattr(staged.store, 'save_state', killed)
    with pytest.raises(StoreError):
        staged.tick(at(4))
    assert staged.active.number == 1 and staged.rollout.stage is Stage.CANARY   # untouched
    again = restarted(tmp_path, at(5))
    assert again.active.number == 1 and again.candidate.number == 2
    assert again.rollout.stage is Stage.CANARY


def test_a_kill_between_the_bundle_and_the_state_leaves_no_candidate(tmp_path, root,
                                                                     operators, monkeypatch):
    g = governor_for(tmp_path, root)
    g.submit(release(operators, 1, '1.0.0'), NOW)
    monkeypatch.setattr(g.store, 'save_state', lambda _s: (_ for _ in ()).throw(
        StoreError('killed')))
    with pytest.raises(StoreError):
        g.submit(release(operators, 2, '1.1.0'), NOW)
    again = restarted(tmp_path)
    assert again.candidate is None and again.active.number == 1
    assert again.store.state().installed_max == 1


def test_a_candidate_that_no_longer_verifies_is_dropped_not_fatal(staged, tmp_path):
    path = tmp_path / 'store' / 'releases' / '2.tar.gz'
    path.write_bytes(path.read_bytes()[:100])
    again = restarted(tmp_path)
    assert again.active.number == 1 and again.candidate is None and again.rollout is None
    assert [(n.kind, n.number) for n in again.notices] == [(NoticeKind.CANDIDATE_DROPPED, 2)]
    assert 'rollout is aborted' in again.notices[0].reason
    assert ReleaseStore(tmp_path / 'store').state().candidate is None        # recorded once
    assert restarted(tmp_path).notices == ()


def test_an_expired_candidate_is_dropped_on_restart(tmp_path, root, operators):
    g = governor_for(tmp_path, root)
    g.submit(release(operators, 1, '1.0.0'), NOW)
    g.submit(carrying(operators, 2, '1.1.0', expires=at(60)), NOW)
    again = restarted(tmp_path, at(61))
    assert again.candidate is None and again.notices[0].kind is NoticeKind.CANDIDATE_DROPPED
    assert 'ExpiredReleaseError' in again.notices[0].reason


def test_a_stored_plan_other_than_the_signed_one_drops_the_candidate(tmp_path, root, operators):
    g = governor_for(tmp_path, root)
    g.submit(release(operators, 1, '1.0.0'), NOW)
    g.submit(carrying(operators, 2, '1.1.0', plan=plan_yaml(PLAN)), NOW)
    state = g.store.state()
    forged = dict(state.rollout, plan={'stages': ['canary', 'full'],
                                       'rules': {'canary': PLAN.to_doc()['rules']['canary']}})
    g.store.save_state(replace_state(state, rollout=forged))
    again = restarted(tmp_path)
    assert again.candidate is None and 'differs from the signed one' in again.notices[0].reason


def replace_state(state, **changes):
    from dataclasses import replace
    return replace(state, **changes)


def test_the_store_round_trips_the_rollout(staged, tmp_path):
    agree(staged, 2)
    staged.tick(at(11))
    state = ReleaseStore(tmp_path / 'store').state()
    assert StoreState.from_json(state.to_json()) == state
    assert state.rollout == staged.rollout.to_dict()


@pytest.mark.parametrize('change, problem', [
    ({'rollout': None}, 'candidate and its rollout go together'),
    ({'candidate': None}, 'candidate and its rollout go together'),
    ({'candidate': 9, 'installed_max': 9}, 'rollout: of release 2'),
    ({'installed_max': 1}, 'above installed_max'),
    ({'rollout': {'number': 2}}, 'rollout'),
])
def test_a_corrupt_rollout_state_is_a_clear_error(staged, tmp_path, change, problem):
    doc = json.loads((tmp_path / 'store' / 'state.json').read_text())
    doc.update(change)
    (tmp_path / 'store' / 'state.json').write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=problem):
        restarted(tmp_path)


def test_a_promoted_candidate_can_be_rolled_back(staged, operators):
    staged.submit(release(operators, 3, '1.2.0'), NOW)   # supersedes 2 as the candidate
    assert staged.previous is None                        # nothing was promoted yet: no rollback
    agree(staged)
    staged.tick(at(2))
    agree(staged)
    staged.tick(at(4))
    assert (staged.active.number, staged.previous.number) == (3, 1)
    staged.rollback(rollback_request(operators[0][0], 1), at(5))
    assert staged.active.number == 1


def test_advance_ignores_an_outcome_of_another_stage_run(staged):
    stale = Outcome(OutcomeKind.SUCCESS, ('x',), {}, Stage.SHADOW,
                    staged.rollout.started_ns - 1)
    assert staged.advance(stale, at(2)) == () and staged.rollout.stage is Stage.SHADOW


def test_drop_candidate_needs_no_signature_and_only_takes_it_out_of_force(staged):
    events = staged.drop_candidate('the candidate Oracle could not load the release', at(1))
    assert kinds(events) == [EventKind.ABORTED] and staged.active.number == 1
    assert staged.drop_candidate('again', at(2)) == ()


# -- the invariants, over random sequences with restarts and kills --------------------------------

OPS = st.lists(st.sampled_from(['agree', 'unsafe', 'tick', 'late_tick', 'promote', 'abort',
                                'restart', 'kill_while_ticking']), max_size=14)


def test_governance_invariants_under_any_sequence(tmp_path_factory, root, operators):
    """Whatever happens (observations, ticks, signed promotes and aborts, restarts, kill -9 as
    a change is written): release 1 stays active while release 2 is in rollout, 2 becomes
    active only after passing shadow and canary (by analysis or signed promote, one stage at a
    time), a restart never moves the rollout, and after an abort nothing of 2 is in force."""
    first, second = release(operators, 1, '1.0.0'), release(operators, 2, '1.1.0')

    @settings(max_examples=40, deadline=None)
    @given(OPS)
    def run(ops):
        where = tmp_path_factory.mktemp('gov')
        g = governor_for(where, root)
        g.submit(first, NOW)
        g.submit(second, NOW)
        t, passed, aborted = 0.0, [], False
        for op in ops:
            t += 0.5
            stored = g.store.state()
            before = (g.active.number, g.rollout.index if g.rollout else None,
                      g.rollout.paused if g.rollout else None)
            events: tuple = ()
            if op == 'agree' and g.rollout:
                agree(g)
            elif op == 'unsafe' and g.rollout:
                agree(g, 1, active_action=Action.FALLBACK,
                      active_reasons=(Reason.TIME_TO_COLLISION,))
            elif op in ('tick', 'late_tick'):
                t += 1.5 if op == 'tick' else 11.0
                events = g.tick(at(t))
            elif op in ('promote', 'abort') and g.rollout:
                events = g.rollout_request(rollout_request(operators[0][0], op, 2,
                                                           expires=at(t + 60)), at(t))[1]
            elif op == 'restart':
                g = restarted(where, at(t))
                assert (g.active.number, g.rollout.index if g.rollout else None,
                        g.rollout.paused if g.rollout else None) == before   # never moved
            elif op == 'kill_while_ticking':
                if g.rollout:
                    agree(g)
                t += 2.0

                def killed(_state):
                    raise StoreError('killed')
                g.store.save_state = killed
                try:
                    g.tick(at(t))
                except StoreError:
                    pass
                g = restarted(where, at(t))
                assert g.store.state() == replace_state(stored, rollout=g.store.state().rollout)
                assert g.active.number == before[0]               # never promoted by a kill
                assert (g.rollout.index if g.rollout else None) == before[1]
            passed += [e.stage for e in events if e.kind is EventKind.STAGE_PASSED]
            aborted = aborted or any(e.kind is EventKind.ABORTED for e in events)
            state = g.store.state()
            if g.rollout is not None:
                assert g.active.number == 1 and state.active == 1 and state.candidate == 2
                assert g.rollout.index == len(passed) and not aborted
                assert g.rollout.enforces_candidate == (g.rollout.stage is Stage.CANARY)
            elif g.active.number == 2:
                assert passed == [Stage.SHADOW, Stage.CANARY] and not aborted
                assert (state.active, state.previous, state.candidate) == (2, 1, None)
            else:
                assert aborted and g.candidate is None and state.candidate is None
                assert state.active == 1

    run()
