"""Every way a release can be bad is refused with its own error, before anything is loaded."""
import hashlib
import io
import tarfile
from datetime import timedelta

import pytest
from tuf.api.metadata import Metadata

from flywheel.errors import (BadReleaseNumberError, CorruptBundleError, ExpiredReleaseError,
                             OversizeBundleError, ReleaseSchemaError, RollbackError,
                             TargetMismatchError, TrailingDataError, UnpinnedFileError,
                             UnsafeBundleError, UnsignedReleaseError)
from flywheel.release.bundle import (ROOT, SPEC, TARGETS, _pack, build_bundle, read_bundle,
                                     sign_bundle, verify_bundle)
from flywheel.release.keys import generate_key, load_signer
from test.conftest import CONFIG
from test.release.conftest import LATER, NOW, craft, spec_bytes


def signed(operators, count=2, number=2, expires=LATER, spec=None):
    bundle = build_bundle(spec or spec_bytes(), number, expires, parent='1.0.0')
    for signer, _ in operators[:count]:
        bundle = sign_bundle(bundle, signer)
    return bundle


def test_a_release_signed_by_the_threshold_verifies(operators, root):
    release = verify_bundle(signed(operators), root, NOW, installed_number=1)
    assert (release.number, release.oracle_version, release.parent_version) == (2, '1.1.0',
                                                                                '1.0.0')
    assert release.spec.version == '1.1.0' and len(release.signed_by) == 2
    assert len(release.bundle_sha256) == 64


def test_three_signatures_are_fine_too(operators, root):
    assert len(verify_bundle(signed(operators, 3), root, NOW, 1).signed_by) == 3


def test_bundles_are_deterministic(operators):
    assert build_bundle(spec_bytes(), 2, LATER) == build_bundle(spec_bytes(), 2, LATER)


def test_fewer_signatures_than_the_threshold(operators, root):
    with pytest.raises(UnsignedReleaseError, match='1 valid signature.*threshold 2'):
        verify_bundle(signed(operators, 1), root, NOW, 1)


def test_unsigned(operators, root):
    with pytest.raises(UnsignedReleaseError):
        verify_bundle(signed(operators, 0), root, NOW, 1)


def test_a_signature_by_an_unknown_key_counts_for_nothing(operators, root, tmp_path):
    generate_key(tmp_path / 'mallory.pem')
    bundle = sign_bundle(signed(operators, 1), load_signer(tmp_path / 'mallory.pem'))
    with pytest.raises(UnsignedReleaseError, match='unknown key'):
        verify_bundle(bundle, root, NOW, 1)


def test_a_bad_signature(operators, root):
    from tuf.api.metadata import Metadata
    bundle = signed(operators, 2)
    files = read_bundle(bundle)
    md = Metadata.from_bytes(files[TARGETS])
    keyid = next(iter(md.signatures))
    md.signatures[keyid].signature = '00' * 64
    with pytest.raises(UnsignedReleaseError, match='bad signature'):
        verify_bundle(_pack({**files, TARGETS: md.to_bytes()}), root, NOW, 1)


def test_metadata_edited_after_signing(operators, root):
    files = read_bundle(signed(operators, 2))
    edited = files[TARGETS].replace(b'"version":2', b'"version":9')
    with pytest.raises(UnsignedReleaseError):
        verify_bundle(_pack({**files, TARGETS: edited}), root, NOW, 1)


def test_expired(operators, root):
    with pytest.raises(ExpiredReleaseError):
        verify_bundle(signed(operators, expires=NOW - timedelta(seconds=1)), root, NOW, 1)


@pytest.mark.parametrize('installed', [2, 3])
def test_not_newer_than_the_installed_release(operators, root, installed):
    with pytest.raises(RollbackError, match='not newer'):
        verify_bundle(signed(operators, number=2), root, NOW, installed)


def test_the_installed_release_itself_passes_on_restart(operators, root):
    assert verify_bundle(signed(operators, number=2), root, NOW, 2, allow_same=True).number == 2


def test_spec_swapped_after_signing(operators, root):
    files = read_bundle(signed(operators))
    forged = spec_bytes(**{'max_speed: 1.0 ': 'max_speed: 9.0 '})
    with pytest.raises(TargetMismatchError):
        verify_bundle(_pack({**files, SPEC: forged}), root, NOW, 1)


def test_spec_with_the_same_length_but_other_bytes(operators, root):
    files = read_bundle(signed(operators))
    forged = files[SPEC].replace(b'max_speed: 1.0', b'max_speed: 9.0')
    assert len(forged) == len(files[SPEC])
    with pytest.raises(TargetMismatchError):
        verify_bundle(_pack({**files, SPEC: forged}), root, NOW, 1)


def test_a_malformed_spec_cannot_even_be_built():
    with pytest.raises(ReleaseSchemaError, match='limits.max_speed'):
        build_bundle(spec_bytes(**{'max_speed: 1.0 ': 'max_speed: -1.0 '}), 2, LATER)


def test_a_signed_but_malformed_spec_is_a_schema_error(operators, root):
    """An operator signs a spec the Oracle cannot load: the schema check still refuses it."""
    from tuf.api.metadata import Metadata, TargetFile
    bad = spec_bytes(**{'max_speed: 1.0 ': 'max_speed: -1.0 '})
    targets = Metadata.from_bytes(read_bundle(signed(operators))[TARGETS])
    pinned = TargetFile.from_data(SPEC, bad, ['sha256'])
    pinned.unrecognized_fields['custom'] = {'oracle_version': '1.1.0', 'parent_version': ''}
    targets.signed.targets = {SPEC: pinned}
    targets.signatures.clear()
    for signer, _ in operators[:2]:
        targets.sign(signer, append=True)
    with pytest.raises(ReleaseSchemaError, match='limits.max_speed'):
        verify_bundle(_pack({TARGETS: targets.to_bytes(), SPEC: bad}), root, NOW, 1)


def test_truncated_archive(operators, root):
    bundle = signed(operators)
    with pytest.raises(CorruptBundleError):
        verify_bundle(bundle[:len(bundle) // 2], root, NOW, 1)


def test_not_an_archive(root):
    with pytest.raises(CorruptBundleError):
        verify_bundle(b'PK\x03\x04 this is a zip, not a tar.gz', root, NOW, 1)


def archive_with(member: tarfile.TarInfo, data: bytes = b'') -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w:gz') as archive:
        archive.addfile(member, io.BytesIO(data) if data else None)
    return out.getvalue()


@pytest.mark.parametrize('name', ['../oracle_spec.yaml', '/etc/passwd', 'dir/oracle_spec.yaml',
                                  'extra.sh'])
def test_path_traversal_and_unknown_members(root, name):
    info = tarfile.TarInfo(name)
    info.size = 3
    with pytest.raises(UnsafeBundleError, match='unexpected member'):
        verify_bundle(archive_with(info, b'abc'), root, NOW, 1)


@pytest.mark.parametrize('kind', [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_links(root, kind):
    info = tarfile.TarInfo(SPEC)
    info.type, info.linkname = kind, '/etc/shadow'
    with pytest.raises(UnsafeBundleError, match='not a regular file'):
        verify_bundle(archive_with(info), root, NOW, 1)


def test_oversize_bundle(operators, root):
    with pytest.raises(OversizeBundleError):
        verify_bundle(signed(operators), root, NOW, 1, max_bytes=1000)


def test_missing_targets_metadata(root):
    with pytest.raises(CorruptBundleError, match='no targets.json'):
        verify_bundle(_pack({SPEC: spec_bytes()}), root, NOW, 1)


def test_targets_that_are_not_tuf_metadata(root):
    with pytest.raises(ReleaseSchemaError, match='not valid TUF'):
        verify_bundle(_pack({SPEC: spec_bytes(), TARGETS: b'{"signed": 1}'}), root, NOW, 1)


# -- numbers, pins and what a refusal says (issue: parsing before trust; pin everything) ---------

def test_a_signed_release_numbered_2_to_the_64_is_refused(operators, root):
    """It used to install, then crash governance on every restart (uint64 message fields)."""
    with pytest.raises(BadReleaseNumberError, match='18446744073709551616'):
        verify_bundle(craft(operators, spec_bytes(), number=2**64), root, NOW, 1)


def test_the_largest_release_number_is_fine(operators, root):
    assert verify_bundle(craft(operators, spec_bytes(), number=2**63 - 1), root, NOW, 1).number \
        == 2**63 - 1


def test_build_refuses_a_number_out_of_range():
    with pytest.raises(BadReleaseNumberError):
        build_bundle(spec_bytes(), 2**63, LATER)


def test_an_unpinned_root_json_added_to_a_signed_release(operators, root):
    """Anyone could add a root.json to a signed release; the signed targets must pin it."""
    files = read_bundle(signed(operators))
    with pytest.raises(UnpinnedFileError, match=r"\['root.json'\] not pinned"):
        verify_bundle(_pack({**files, ROOT: root.to_bytes()}), root, NOW, 1)


def test_a_carried_root_is_pinned_by_build(operators, root):
    bundle = build_bundle(spec_bytes(), 2, LATER, root=root.to_bytes())
    targets = Metadata.from_bytes(read_bundle(bundle)[TARGETS]).signed
    assert targets.targets[ROOT].length == len(root.to_bytes())


def test_a_pinned_root_swapped_after_signing(operators, root):
    bundle = sign_bundle(sign_bundle(build_bundle(spec_bytes(), 2, LATER, root=root.to_bytes()),
                                     operators[0][0]), operators[1][0])
    files = read_bundle(bundle)
    other = root.to_bytes().replace(b'"version":1', b'"version":2')
    with pytest.raises(TargetMismatchError, match='root.json'):
        verify_bundle(_pack({**files, ROOT: other}), root, NOW, 1)


def test_junk_appended_to_a_signed_release(operators, root):
    """Same signed content, new sha256: refused, so one release has one identity."""
    with pytest.raises(TrailingDataError):
        verify_bundle(signed(operators) + b'\0junk', root, NOW, 1)


def test_a_refusal_names_the_bundle_and_its_signers(operators, root):
    bundle = signed(operators, 1)
    with pytest.raises(UnsignedReleaseError) as caught:
        verify_bundle(bundle, root, NOW, 1)
    assert caught.value.bundle_sha256 == hashlib.sha256(bundle).hexdigest()
    assert caught.value.key_ids == (operators[0][0].public_key.keyid,)


# -- the rollout plan and the regression suite travel signed (issue: staged rollout) -------------

PLAN_FULL = b'stages: [full]\n'
SUITE = b"""
golden:
  - {id: aisle_south, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
incidents:
  - {id: shelf_a_head_on, start: [3.0, 4.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
"""


def with_members(operators, **members):
    bundle = build_bundle(spec_bytes(), 2, LATER, **members)
    for signer, _ in operators[:2]:
        bundle = sign_bundle(bundle, signer)
    return bundle


def test_the_plan_and_suite_are_pinned_and_parsed(operators, root):
    from flywheel.release.bundle import PLAN, REGRESSION
    from flywheel.release.rollout import DEFAULT_PLAN, IMMEDIATE
    plan = (CONFIG / 'rollout.yaml').read_bytes()
    bundle = with_members(operators, plan=plan, regression=SUITE)
    targets = Metadata.from_bytes(read_bundle(bundle)[TARGETS]).signed.targets
    assert (targets[PLAN].length, targets[REGRESSION].length) == (len(plan), len(SUITE))
    release = verify_bundle(bundle, root, NOW, 1)
    assert release.plan == DEFAULT_PLAN
    assert [c.id for c in release.regression.cases] == ['aisle_south', 'shelf_a_head_on']
    assert verify_bundle(with_members(operators, plan=PLAN_FULL), root, NOW, 1).plan == IMMEDIATE


def test_a_release_without_them_has_neither(operators, root):
    release = verify_bundle(signed(operators), root, NOW, 1)
    assert release.plan is None and release.regression is None


def test_an_unpinned_plan_added_to_a_signed_release(operators, root):
    """Anyone on the way could add `stages: [full]` to skip every stage: it must be signed."""
    from flywheel.release.bundle import PLAN
    files = read_bundle(signed(operators))
    with pytest.raises(UnpinnedFileError, match=r"\['rollout.yaml'\] not pinned"):
        verify_bundle(_pack({**files, PLAN: PLAN_FULL}), root, NOW, 1)


def test_a_pinned_plan_swapped_after_signing(operators, root):
    from flywheel.release.bundle import PLAN
    files = read_bundle(with_members(operators, plan=(CONFIG / 'rollout.yaml').read_bytes()))
    with pytest.raises(TargetMismatchError, match='rollout.yaml'):
        verify_bundle(_pack({**files, PLAN: PLAN_FULL}), root, NOW, 1)


def test_a_pinned_suite_dropped_after_signing(operators, root):
    from flywheel.release.bundle import REGRESSION
    files = read_bundle(with_members(operators, regression=SUITE))
    del files[REGRESSION]
    with pytest.raises(UnpinnedFileError):
        verify_bundle(_pack(files), root, NOW, 1)


@pytest.mark.parametrize('member, data, field', [
    ('plan', b'stages: [canary, shadow, full]\n', 'rollout.yaml.stages'),
    ('plan', b'stages: [shadow, full]\nrules: {shadow: {min_samples: 0}}\n',
     'rollout.yaml.rules.shadow'),
    ('plan', b'stages: [full]\nskip: true\n', 'rollout.yaml.skip'),
    ('plan', b'- full\n', 'rollout.yaml'),
    ('plan', b'\xff\xfe', 'rollout.yaml'),
    ('regression', b'golden: [{id: c, start: [1.0, 1.0, 0.0], twist: [0.5, 0.0], points: 2, '
     b'dt: 0.1}]\n', 'regression.yaml.golden[0]'),
    ('regression', b'incidents: [{id: c, start: [1.0, 1.0], twist: [0.5, 0.0], points: 9, '
     b'dt: 0.1}]\n', 'regression.yaml.incidents[0].start'),
])
def test_a_bad_plan_or_suite_cannot_even_be_built(member, data, field):
    with pytest.raises(ReleaseSchemaError, match=field.replace('[', r'\[').replace(']', r'\]')):
        build_bundle(spec_bytes(), 2, LATER, **{member: data})


def test_a_signed_but_malformed_plan_is_a_schema_error(operators, root):
    """An operator signs a plan governance cannot follow: refused, never read as [full]."""
    from tuf.api.metadata import TargetFile

    from flywheel.release.bundle import PLAN
    bad = b'stages: [shadow, full]\n'
    files = read_bundle(signed(operators))
    targets = Metadata.from_bytes(files[TARGETS])
    targets.signed.targets[PLAN] = TargetFile.from_data(PLAN, bad, ['sha256'])
    targets.signatures.clear()
    for signer, _ in operators[:2]:
        targets.sign(signer, append=True)
    with pytest.raises(ReleaseSchemaError, match='rollout.yaml.rules.shadow'):
        verify_bundle(_pack({**files, TARGETS: targets.to_bytes(), PLAN: bad}), root, NOW, 1)


def test_a_plan_or_suite_over_the_size_limit(operators):
    from flywheel.release.bundle import MAX_PLAN_BYTES, MAX_REGRESSION_BYTES
    with pytest.raises(OversizeBundleError, match='rollout.yaml'):
        build_bundle(spec_bytes(), 2, LATER, plan=b'#' * (MAX_PLAN_BYTES + 1))
    with pytest.raises(OversizeBundleError, match='regression.yaml'):
        build_bundle(spec_bytes(), 2, LATER, regression=b'#' * (MAX_REGRESSION_BYTES + 1))


def test_an_oversize_suite_member_is_refused_before_it_is_read(root):
    from flywheel.release.bundle import MAX_REGRESSION_BYTES, REGRESSION
    big = _pack({TARGETS: b'{}', SPEC: spec_bytes(),
                 REGRESSION: b'#' * (MAX_REGRESSION_BYTES + 1)})
    with pytest.raises(OversizeBundleError, match='regression.yaml is'):
        verify_bundle(big, root, NOW, 1)


def test_release_build_carries_a_plan_and_a_suite(tmp_path, monkeypatch, capsys, root):
    from flywheel.cli.main import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'spec.yaml').write_bytes(spec_bytes())
    (tmp_path / 'plan.yaml').write_bytes(PLAN_FULL)
    (tmp_path / 'suite.yaml').write_bytes(SUITE)
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--plan', 'plan.yaml',
                 '--regression', 'suite.yaml', '--out', 'r2.tar.gz']) == 0
    assert 'carrying (and pinning) its rollout plan and a regression suite' in \
        capsys.readouterr().out
    files = read_bundle((tmp_path / 'r2.tar.gz').read_bytes())
    assert files['rollout.yaml'] == PLAN_FULL and files['regression.yaml'] == SUITE
    (tmp_path / 'bad.yaml').write_bytes(b'stages: [shadow]\n')
    assert main(['release', 'build', 'spec.yaml', '--number', '2', '--plan', 'bad.yaml',
                 '--out', 'x.tar.gz']) == 1
    assert 'rollout.yaml.stages' in capsys.readouterr().err
