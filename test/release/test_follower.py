"""ReleaseFollower: a node follows governance's directives only when signed, newer, and carrying
releases that verify here; each refusal changes nothing."""
from __future__ import annotations

import dataclasses

import pytest
from securesystemslib.signer import SSlibKey

from flywheel.auth import assign_signers, write_message_key
from flywheel.errors import ReleaseError
from flywheel.oracle.directive import Directive
from flywheel.release.follower import ReleaseFollower
from flywheel.release.root import new_root, sign
from test.release.conftest import NOW, craft, spec_bytes


@pytest.fixture
def setup(operators, tmp_path):
    governance = write_message_key(tmp_path / 'governance.pem')
    md = new_root([p for _, p in operators], 2, 2, NOW.replace(year=NOW.year + 1))
    assign_signers(md.signed, [], [SSlibKey.from_crypto(governance.private.public_key())])
    for signer, _ in operators[:2]:
        sign(md, signer)
    root = md.to_bytes()
    bundles = {n: craft(operators, spec_bytes(f'1.{n}.0'), number=n, version=f'1.{n}.0')
               for n in (1, 2)}
    return root, governance, bundles


def directive(setup, number=1, seq=1, key=None, **changes) -> Directive:
    root, governance, bundles = setup
    d = Directive(7, seq, number, f'1.{number}.0', False, bundles[number], root, **changes)
    key = key or governance
    return dataclasses.replace(d, key_id=key.key_id, signature=key.sign(d.canonical_bytes()))


def test_a_signed_directive_is_applied_and_its_spec_used(setup):
    follower = ReleaseFollower(setup[0], NOW)
    followed = follower.follow(directive(setup), NOW)
    assert followed.release.spec.version == '1.1.0' and followed.candidate is None
    assert (follower.applied, follower.number) == ((7, 1), 1)


def test_an_unsigned_or_foreign_directive_is_refused(setup, tmp_path):
    follower = ReleaseFollower(setup[0], NOW)
    stranger = write_message_key(tmp_path / 'mallory.pem')
    with pytest.raises(ReleaseError, match='not a governance key'):
        follower.follow(directive(setup, key=stranger), NOW)
    unsigned = dataclasses.replace(directive(setup), signature=b'')
    with pytest.raises(ReleaseError, match='unsigned'):
        follower.follow(unsigned, NOW)
    assert follower.applied is None and follower.number == 0


def test_a_replayed_directive_is_refused(setup):
    follower = ReleaseFollower(setup[0], NOW)
    d = directive(setup)
    follower.follow(d, NOW)
    with pytest.raises(ReleaseError, match='not newer'):
        follower.follow(d, NOW)


def test_a_lower_release_without_rollback_is_refused(setup):
    follower = ReleaseFollower(setup[0], NOW)
    follower.follow(directive(setup, number=2, seq=1), NOW)
    with pytest.raises(ReleaseError, match='not a rollback'):
        follower.follow(directive(setup, number=1, seq=2), NOW)
    assert follower.number == 2


def test_a_directive_naming_another_release_than_it_carries_is_refused(setup):
    follower = ReleaseFollower(setup[0], NOW)
    root, governance, bundles = setup
    d = Directive(7, 1, 2, '1.2.0', False, bundles[1], root)
    d = dataclasses.replace(d, key_id=governance.key_id,
                            signature=governance.sign(d.canonical_bytes()))
    with pytest.raises(ReleaseError, match='the bundle is 1'):
        follower.follow(d, NOW)


def test_a_root_never_trusted_is_refused(setup, operators):
    follower = ReleaseFollower(setup[0], NOW)
    other = new_root([p for _, p in operators], 1, 1, NOW.replace(year=NOW.year + 1))
    sign(other, operators[2][0])
    root, governance, bundles = setup
    d = Directive(7, 1, 1, '1.1.0', False, bundles[1], other.to_bytes())
    d = dataclasses.replace(d, key_id=governance.key_id,
                            signature=governance.sign(d.canonical_bytes()))
    with pytest.raises(ReleaseError, match='never trusted'):
        follower.follow(d, NOW)
    assert follower.applied is None
