"""One verification path: `flywheel release verify` and governance decide every submission the
same way, because both call verify_submission with the same inputs."""
from datetime import timedelta

import pytest

import flywheel.cli.release
import flywheel.release.governor
import flywheel.release.submission
from flywheel.cli.main import main
from flywheel.errors import (ExpiredRootError, ReleaseError, RootRotationError, RootSchemaError,
                             UnsignedReleaseError)
from flywheel.release.bundle import build_bundle, sign_bundle
from flywheel.release.governor import Governor
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import new_root, sign
from flywheel.release.store import ReleaseStore
from flywheel.release.submission import verify_submission
from test.release.conftest import LATER, NOW, craft, signed_root_dict, spec_bytes


@pytest.fixture
def dave(tmp_path):
    generate_key(tmp_path / 'keys' / 'dave.pem')
    return load_signer(tmp_path / 'keys' / 'dave.pem')


def rotated(operators, dave, expires=NOW + timedelta(days=365)):
    """v2: bob, carol, dave (alice retired), 2-of-3, signed by old (alice, bob) and new (bob,
    dave) thresholds."""
    v2 = new_root([p for _, p in operators[1:]] + [dave.public_key], 2, 2, expires, version=2)
    for signer in (operators[0][0], operators[1][0], dave):
        sign(v2, signer)
    return v2


def release_carrying(root_bytes: bytes, signers) -> bytes:
    bundle = build_bundle(spec_bytes(), 1, LATER, root=root_bytes)
    for signer in signers:
        bundle = sign_bundle(bundle, signer)
    return bundle


def governance_says(tmp_path, root, bundle) -> str:
    governor = Governor(ReleaseStore(tmp_path / 'store'))
    governor.load(NOW, root.to_bytes())
    try:
        governor.submit(bundle, NOW)
    except ReleaseError as exc:
        return f'{type(exc).__name__}: {exc}'
    return 'installed'


def cli_says(tmp_path, root, bundle, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(flywheel.cli.release, '_now', lambda: NOW)
    (tmp_path / 'bundle.tar.gz').write_bytes(bundle)
    (tmp_path / 'root.json').write_bytes(root.to_bytes())
    capsys.readouterr()
    code = main(['release', 'verify', str(tmp_path / 'bundle.tar.gz'), '--root',
                 str(tmp_path / 'root.json'), '--installed', '0'])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_carried_root_with_threshold_0_is_refused_by_both(operators, root, dave, tmp_path,
                                                            monkeypatch, capsys):
    """The CLI used to ignore the carried root and pass what governance refused."""
    doc = rotated(operators, dave).to_dict()
    doc['signed']['roles']['targets']['threshold'] = 0
    carried = signed_root_dict(doc, [operators[0][0], operators[1][0], dave])
    bundle = craft(operators, spec_bytes(), number=1, root=carried)
    with pytest.raises(RootSchemaError, match='threshold'):
        verify_submission(bundle, root, NOW, 0)
    verdict = governance_says(tmp_path, root, bundle)
    assert verdict.startswith('RootSchemaError')
    code, said = cli_says(tmp_path, root, bundle, monkeypatch, capsys)
    assert code == 1 and verdict.split(': ', 1)[1] in said


def test_a_valid_rotation_is_accepted_by_both(operators, root, dave, tmp_path, monkeypatch,
                                              capsys):
    """The CLI used to check the release against the old root and refuse it."""
    bundle = release_carrying(rotated(operators, dave).to_bytes(), [operators[1][0], dave])
    release, new = verify_submission(bundle, root, NOW, 0)
    assert new.signed.version == 2 and release.root_version == 2
    assert governance_says(tmp_path, root, bundle) == 'installed'
    code, said = cli_says(tmp_path, root, bundle, monkeypatch, capsys)
    assert code == 0 and 'rotates the trust root to v2' in said


def test_both_call_the_one_function(operators, root, tmp_path, monkeypatch, capsys):
    calls = []
    real = flywheel.release.submission.verify_submission

    def spy(*args):
        calls.append(args[2:])                   # (now, installed_number, max_bytes)
        return real(*args)
    monkeypatch.setattr(flywheel.cli.release, 'verify_submission', spy)
    monkeypatch.setattr(flywheel.release.governor, 'verify_submission', spy)
    bundle = craft(operators, spec_bytes(), number=1)
    assert governance_says(tmp_path, root, bundle) == 'installed'
    assert cli_says(tmp_path, root, bundle, monkeypatch, capsys)[0] == 0
    assert calls == [(NOW, 0, calls[0][2])] * 2


def test_a_carried_root_of_the_same_version_but_other_content(operators, root):
    other = new_root([p for _, p in operators], 1, 1, NOW + timedelta(days=9))
    for signer, _ in operators:
        sign(other, signer)
    with pytest.raises(RootRotationError, match='differs from the trusted root v1'):
        verify_submission(craft(operators, spec_bytes(), root=other.to_bytes()), root, NOW, 0)


def test_the_trusted_root_carried_again_changes_nothing(operators, root):
    release, new = verify_submission(craft(operators, spec_bytes(), root=root.to_bytes()), root,
                                     NOW, 0)
    assert new is None and release.root_version == 1


def test_a_carried_rotation_without_the_old_threshold(operators, root, dave):
    v2 = new_root([dave.public_key], 1, 1, NOW + timedelta(days=9), version=2)
    sign(v2, dave)
    with pytest.raises(RootRotationError, match='old root'):
        verify_submission(release_carrying(v2.to_bytes(), [dave]), root, NOW, 0)


def test_an_expired_trusted_root_accepts_no_release(operators, root):
    with pytest.raises(ExpiredRootError):
        verify_submission(craft(operators, spec_bytes(), expires=NOW + timedelta(days=999)),
                          root, NOW + timedelta(days=366), 0)


def test_an_expired_root_can_still_be_rotated_away(operators, root, dave):
    later = NOW + timedelta(days=366)
    v2 = rotated(operators, dave, expires=later + timedelta(days=365))
    bundle = build_bundle(spec_bytes(), 1, later + timedelta(days=30), root=v2.to_bytes())
    for signer in (operators[1][0], dave):
        bundle = sign_bundle(bundle, signer)
    assert verify_submission(bundle, root, later, 0)[1].signed.version == 2


def test_a_release_signed_by_retired_keys_after_a_rotation(operators, root, dave):
    bundle = release_carrying(rotated(operators, dave).to_bytes(), [operators[0][0],
                                                                    operators[1][0]])
    with pytest.raises(UnsignedReleaseError, match='trust root v2'):
        verify_submission(bundle, root, NOW, 0)
