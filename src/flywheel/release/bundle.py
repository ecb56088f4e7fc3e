"""The release bundle: a gzip'd ustar archive of `targets.json` (TUF targets metadata, signed by
operators), the Oracle spec it pins (length and sha256), and optionally, each pinned the same way:
a new `root.json`, the rollout plan `rollout.yaml` (flywheel/release/rollout.py) and the
regression suite `regression.yaml` (flywheel/release/regression.py).

`verify_bundle` checks a bundle against one given trust root; `verify_submission`
(flywheel/release/submission.py) adds the trust root a bundle may carry and is the one path by
which governance and the operator's CLI decide. In order, cheapest and least trusting first:
size, archive safety (flywheel/release/archive.py: bounded, linear, plain files with known names
only), every member pinned by the targets metadata and nothing else in the archive, signatures
against the trusted root (threshold of trusted keys; unknown keys count for nothing), the release
number in 1..MAX_RELEASE_NUMBER, expiry, the number strictly above the installed one
(anti-rollback), the pinned length and hash of every member, the spec's size limits (on the YAML
event stream, before anything is built) and its schema, then the plan's and the suite's (each case
a well-formed proposal for that spec). Each failure is its own ReleaseError subclass, and nothing
is returned unless all pass.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from securesystemslib.signer import Signer
from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import Metadata, Root, TargetFile, Targets

from flywheel.errors import (BadReleaseNumberError, CorruptBundleError, ExpiredReleaseError,
                             OversizeBundleError, OversizeSpecError, ReleaseError,
                             ReleaseSchemaError, RollbackError, SpecError, SpecLimitError,
                             TargetMismatchError, UnpinnedFileError, UnsignedReleaseError)
from flywheel.oracle.spec import OracleSpec, parse_spec
from flywheel.release.archive import pack, unpack
from flywheel.release.regression import RegressionSuite, parse_suite
from flywheel.release.root import MAX_ROOT_BYTES, load_root, tuf_reason
from flywheel.release.rollout import RolloutPlan, parse_plan
from flywheel.yamldoc import parse_yaml

TARGETS, SPEC, ROOT = 'targets.json', 'oracle_spec.yaml', 'root.json'
PLAN, REGRESSION = 'rollout.yaml', 'regression.yaml'
MAX_BUNDLE_BYTES = 16 * 1024 * 1024     # the bundle as sent
MAX_SPEC_BYTES = 4 * 1024 * 1024        # the spec YAML (its node count is bounded separately)
MAX_TARGETS_BYTES = 64 * 1024           # targets.json (room for a few hundred signatures)
MAX_PLAN_BYTES = 256 * 1024             # rollout.yaml
MAX_REGRESSION_BYTES = 256 * 1024       # regression.yaml (<= 1,000 cases of <= 200 points)
MEMBERS = {TARGETS: MAX_TARGETS_BYTES, SPEC: MAX_SPEC_BYTES, ROOT: MAX_ROOT_BYTES,
           PLAN: MAX_PLAN_BYTES, REGRESSION: MAX_REGRESSION_BYTES}
ALLOWED = set(MEMBERS)
# The largest archive a bundle may unpack to: its members, their headers and padding, the end.
MAX_UNPACKED_BYTES = sum(MEMBERS.values()) + 32 * 1024
MAX_RELEASE_NUMBER = 2**63 - 1          # messages carry it as uint64; JSON readers as int64
MAX_VERSION_CHARS = 64                  # Oracle versions travel in string<=64 message fields


@dataclass(frozen=True)
class VerifiedRelease:
    """A release that passed every check; the only way to an Oracle spec from a bundle."""

    number: int                 # the signed, monotonic release number (TUF targets version)
    oracle_version: str
    parent_version: str
    spec: OracleSpec
    spec_bytes: bytes
    bundle_sha256: str
    expires: datetime
    signed_by: tuple[str, ...]  # key ids whose signatures verified
    new_root: bytes | None      # the root.json it carries (pinned), if any
    root_version: int = 0       # the version of the trust root it was verified against
    plan: RolloutPlan | None = None            # its signed rollout plan (None: the default)
    regression: RegressionSuite | None = None  # its signed regression suite, if any

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires


def build_bundle(spec_bytes: bytes, number: int, expires: datetime, parent: str = '',
                 root: bytes | None = None, plan: bytes | None = None,
                 regression: bytes | None = None) -> bytes:
    """An unsigned bundle for ``spec_bytes`` (which must parse as an Oracle spec); a ``root``,
    rollout ``plan`` and ``regression`` suite shipped with it are checked and pinned like the
    spec."""
    check_release_number(number)
    if len(spec_bytes) > MAX_SPEC_BYTES:
        raise OversizeBundleError(f'{SPEC} is {len(spec_bytes)} bytes > {MAX_SPEC_BYTES}')
    spec = _parse_spec(spec_bytes)
    _check_version_text('parent version', parent)
    target = TargetFile.from_data(SPEC, spec_bytes, ['sha256'])
    target.unrecognized_fields['custom'] = {'oracle_version': spec.version,
                                            'parent_version': parent}
    files = {SPEC: spec_bytes}
    if root is not None:
        load_root(root)
        files[ROOT] = root
    if plan is not None:
        _parse_plan(_bounded(PLAN, plan))
        files[PLAN] = plan
    if regression is not None:
        _parse_suite(_bounded(REGRESSION, regression), spec)
        files[REGRESSION] = regression
    pinned = {name: TargetFile.from_data(name, data, ['sha256']) for name, data in files.items()}
    pinned[SPEC] = target
    targets = Metadata(Targets(version=number, expires=expires, targets=pinned))
    return pack({TARGETS: targets.to_bytes(), **files})


def sign_bundle(bundle: bytes, signer: Signer) -> bytes:
    """The same bundle with one more signature on its targets metadata."""
    files = read_bundle(bundle)
    targets = parse_targets(files)
    targets.sign(signer, append=True)
    return pack({**files, TARGETS: targets.to_bytes()})


def read_bundle(bundle: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> dict[str, bytes]:
    """The files of a bundle, refusing anything oversize, corrupt or unsafe (bounded work)."""
    if len(bundle) > max_bytes:
        raise OversizeBundleError(f'bundle is {len(bundle)} bytes > {max_bytes}')
    files = unpack(bundle, MEMBERS, min(max_bytes, MAX_UNPACKED_BYTES))
    for required in (TARGETS, SPEC):
        if required not in files:
            raise CorruptBundleError(f'bundle has no {required}')
    return files


def parse_targets(files: dict[str, bytes]) -> Metadata[Targets]:
    """The (not yet verified) targets metadata, which must pin exactly the other members."""
    try:
        metadata = Metadata.from_bytes(files[TARGETS])
    except Exception as exc:  # noqa: BLE001 - tuf raises several kinds for malformed metadata
        raise ReleaseSchemaError(f'{TARGETS}: not valid TUF metadata: '
                                 f'{tuf_reason(exc)}') from exc
    if not isinstance(metadata.signed, Targets):
        raise ReleaseSchemaError(f'{TARGETS}: expected targets metadata, got '
                                 f'{metadata.signed.type}')
    pinned, carried = set(metadata.signed.targets), set(files) - {TARGETS}
    if SPEC not in pinned:
        raise ReleaseSchemaError(f'{TARGETS} must pin {SPEC}')
    if pinned != carried:
        raise UnpinnedFileError(
            f'{TARGETS} pins {sorted(pinned)} but the bundle holds {sorted(carried)}'
            + (f': {sorted(carried - pinned)} not pinned by any signature'
               if carried - pinned else ''))
    return metadata


def verify_bundle(bundle: bytes, root: Metadata[Root], now: datetime, installed_number: int,
                  max_bytes: int = MAX_BUNDLE_BYTES, allow_same: bool = False, *,
                  allow_expired: bool = False) -> VerifiedRelease:
    """Every check against ``root``; ``allow_same`` lets the installed release itself pass and
    ``allow_expired`` an expired one (both for a restart). A carried root.json is only checked
    against its pin here: `verify_submission` decides whether it is installed."""
    sha = bundle_sha256(bundle, max_bytes)
    files: dict[str, bytes] = {}
    try:
        files = read_bundle(bundle, max_bytes)
        return check_release(files, parse_targets(files), sha, root, now, installed_number,
                             allow_same=allow_same, allow_expired=allow_expired)
    except ReleaseError as exc:
        annotate(exc, sha, files)
        raise


def check_release(files: dict[str, bytes], metadata: Metadata[Targets], sha256: str,
                  root: Metadata[Root], now: datetime, installed_number: int, *,
                  allow_same: bool = False, allow_expired: bool = False) -> VerifiedRelease:
    """The checks after the archive and the pins' structure: signatures, number, expiry,
    anti-rollback, hashes, spec."""
    targets = metadata.signed
    result = root.signed.get_verification_result('targets', metadata.signed_bytes,
                                                 metadata.signatures)
    if not result.verified:
        unknown = sorted(set(metadata.signatures) - set(root.signed.keys))
        bad = sorted(set(result.unsigned) & set(metadata.signatures))
        raise UnsignedReleaseError(
            f'{len(result.signed)} valid signature(s) by trusted keys, threshold '
            f'{result.threshold} (trust root v{root.signed.version})'
            + (f'; signed by unknown key(s) {unknown}' if unknown else '')
            + (f'; bad signature(s) by {bad}' if bad else ''))
    check_release_number(targets.version)
    if targets.is_expired(now) and not allow_expired:
        raise ExpiredReleaseError(f'release {targets.version} expired '
                                  f'{targets.expires.isoformat()}')
    if targets.version < installed_number or (targets.version == installed_number
                                              and not allow_same):
        raise RollbackError(f'release number {targets.version} is not newer than the installed '
                            f'{installed_number}')
    for name, pinned in sorted(targets.targets.items()):
        try:
            pinned.verify_length_and_hashes(files[name])
        except LengthOrHashMismatchError as exc:
            raise TargetMismatchError(f'{name}: {exc}') from exc
    custom = targets.targets[SPEC].custom if isinstance(targets.targets[SPEC].custom,
                                                        dict) else {}
    signed_version, parent = custom.get('oracle_version'), custom.get('parent_version', '')
    _check_version_text('signed oracle_version', signed_version)
    _check_version_text('signed parent_version', parent)
    spec = _parse_spec(files[SPEC])
    if signed_version != spec.version:
        raise ReleaseSchemaError(f'signed oracle_version {signed_version!r} differs from the '
                                 f'spec\'s {spec.version!r}')
    plan = _parse_plan(files[PLAN]) if PLAN in files else None
    suite = _parse_suite(files[REGRESSION], spec) if REGRESSION in files else None
    return VerifiedRelease(targets.version, spec.version, parent, spec, files[SPEC], sha256,
                           targets.expires, tuple(sorted(result.signed)), files.get(ROOT),
                           root.signed.version, plan=plan, regression=suite)


def check_release_number(number: int) -> None:
    if isinstance(number, bool) or not isinstance(number, int) \
            or not 1 <= number <= MAX_RELEASE_NUMBER:
        raise BadReleaseNumberError(f'release number {number!r}: must be in '
                                    f'1..{MAX_RELEASE_NUMBER}')


def bundle_sha256(bundle: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> str:
    """Hex sha256 of the bundle, or "" for one too large to be worth hashing."""
    return hashlib.sha256(bundle).hexdigest() if len(bundle) <= max_bytes else ''


def annotate(exc: ReleaseError, sha256: str, files: dict[str, bytes]) -> ReleaseError:
    """``exc`` with the refused bundle's sha256 and the key ids that signed it (when known)."""
    if not exc.bundle_sha256:
        exc.bundle_sha256 = sha256
    if not exc.key_ids and TARGETS in files:
        try:
            exc.key_ids = tuple(sorted(Metadata.from_bytes(files[TARGETS]).signatures))
        except Exception:  # noqa: BLE001 - best effort: the refusal itself is what matters
            pass
    return exc


def spec_version(spec_bytes: bytes) -> str:
    return _parse_spec(spec_bytes).version


def _check_version_text(what: str, value) -> None:
    if not isinstance(value, str) or len(value) > MAX_VERSION_CHARS:
        raise ReleaseSchemaError(f'{what}: need a string of at most {MAX_VERSION_CHARS} '
                                 f'characters, got {str(value)[:80]!r}')


def _parse_spec(spec_bytes: bytes) -> OracleSpec:
    try:
        spec = parse_spec(parse_yaml(spec_bytes.decode('utf-8'), SPEC))
    except SpecLimitError as exc:
        raise OversizeSpecError(_in_spec(exc)) from exc
    except SpecError as exc:
        raise ReleaseSchemaError(_in_spec(exc)) from exc
    except UnicodeDecodeError as exc:
        raise ReleaseSchemaError(f'{SPEC}: not UTF-8 ({exc})') from exc
    _check_version_text('Oracle version', spec.version)
    return spec


def _bounded(name: str, data: bytes) -> bytes:
    if len(data) > MEMBERS[name]:
        raise OversizeBundleError(f'{name} is {len(data)} bytes > {MEMBERS[name]}')
    return data


def _parse_plan(data: bytes) -> RolloutPlan:
    try:
        return parse_plan(parse_yaml(data.decode('utf-8'), PLAN), PLAN)
    except SpecError as exc:
        raise ReleaseSchemaError(_in(PLAN, exc)) from exc
    except UnicodeDecodeError as exc:
        raise ReleaseSchemaError(f'{PLAN}: not UTF-8 ({exc})') from exc


def _parse_suite(data: bytes, spec: OracleSpec) -> RegressionSuite:
    try:
        return parse_suite(parse_yaml(data.decode('utf-8'), REGRESSION), spec, REGRESSION)
    except SpecError as exc:
        raise ReleaseSchemaError(_in(REGRESSION, exc)) from exc
    except UnicodeDecodeError as exc:
        raise ReleaseSchemaError(f'{REGRESSION}: not UTF-8 ({exc})') from exc


def _in(member: str, exc: SpecError) -> str:
    return str(exc) if exc.field.startswith(member) else f'{member}: {exc}'


def _in_spec(exc: SpecError) -> str:
    return str(exc) if exc.field == SPEC else f'{SPEC}: {exc}'


def _pack(files: dict[str, bytes]) -> bytes:
    """The archive writer (kept for tests that craft bundles)."""
    return pack(files)
