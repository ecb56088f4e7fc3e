"""The release bundle: a gzip'd tar of `targets.json` (TUF targets metadata, signed by operators)
and the Oracle spec it pins (length and sha256), optionally with a new `root.json`.

`verify_bundle` is the one gate every release passes before anything in it is used: size, archive
safety (plain files with known names only: no paths, no links), signatures against the trusted
root (threshold of trusted keys; unknown keys count for nothing), expiry, release number strictly
above the installed one (anti-rollback), the pinned length and hash of the spec, and the spec's
schema. Each failure is its own ReleaseError subclass, and nothing is returned unless all pass.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from datetime import datetime

from securesystemslib.signer import Signer
from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import Metadata, Root, TargetFile, Targets

from flywheel.errors import (CorruptBundleError, ExpiredReleaseError, OversizeBundleError,
                             ReleaseSchemaError, RollbackError, SpecError, TargetMismatchError,
                             UnsafeBundleError, UnsignedReleaseError)
from flywheel.oracle.spec import OracleSpec, parse_spec
from flywheel.yamldoc import parse_yaml

TARGETS, SPEC, ROOT = 'targets.json', 'oracle_spec.yaml', 'root.json'
ALLOWED = {TARGETS, SPEC, ROOT}
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


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
    new_root: bytes | None


def build_bundle(spec_bytes: bytes, number: int, expires: datetime, parent: str = '',
                 root: bytes | None = None) -> bytes:
    """An unsigned bundle for ``spec_bytes`` (which must parse as an Oracle spec)."""
    spec = _parse_spec(spec_bytes)
    if number < 1:
        raise ReleaseSchemaError(f'release number: must be >= 1, got {number}')
    target = TargetFile.from_data(SPEC, spec_bytes, ['sha256'])
    target.unrecognized_fields['custom'] = {'oracle_version': spec.version,
                                            'parent_version': parent}
    targets = Metadata(Targets(version=number, expires=expires, targets={SPEC: target}))
    return _pack({TARGETS: targets.to_bytes(), SPEC: spec_bytes,
                  **({ROOT: root} if root is not None else {})})


def sign_bundle(bundle: bytes, signer: Signer) -> bytes:
    """The same bundle with one more signature on its targets metadata."""
    files = read_bundle(bundle)
    targets = Metadata.from_bytes(files[TARGETS])
    targets.sign(signer, append=True)
    return _pack({**files, TARGETS: targets.to_bytes()})


def read_bundle(bundle: bytes, max_bytes: int = MAX_BUNDLE_BYTES) -> dict[str, bytes]:
    """The files of a bundle, refusing anything oversize, corrupt or unsafe."""
    if len(bundle) > max_bytes:
        raise OversizeBundleError(f'bundle is {len(bundle)} bytes > {max_bytes}')
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(bundle), mode='r:gz') as archive:
            for member in archive:
                if member.name not in ALLOWED:
                    raise UnsafeBundleError(f'unexpected member {member.name!r} (allowed: '
                                            f'{sorted(ALLOWED)})')
                if not member.isreg():
                    raise UnsafeBundleError(f'{member.name!r} is not a regular file (link or '
                                            'device)')
                if member.name in files:
                    raise UnsafeBundleError(f'{member.name!r} appears twice')
                if member.size > max_bytes:
                    raise OversizeBundleError(f'{member.name} is {member.size} bytes > {max_bytes}')
                data = archive.extractfile(member).read()
                if len(data) != member.size:
                    raise CorruptBundleError(f'{member.name} is truncated')
                files[member.name] = data
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise CorruptBundleError(f'not a readable bundle: {exc}') from exc
    for required in (TARGETS, SPEC):
        if required not in files:
            raise CorruptBundleError(f'bundle has no {required}')
    return files


def verify_bundle(bundle: bytes, root: Metadata[Root], now: datetime, installed_number: int,
                  max_bytes: int = MAX_BUNDLE_BYTES, allow_same: bool = False) -> VerifiedRelease:
    """Every check, in order; ``allow_same`` lets the installed release itself pass (restart)."""
    files = read_bundle(bundle, max_bytes)
    try:
        metadata = Metadata.from_bytes(files[TARGETS])
    except Exception as exc:  # noqa: BLE001 - tuf raises several kinds for malformed metadata
        raise ReleaseSchemaError(f'{TARGETS}: not valid TUF metadata: {exc}') from exc
    if not isinstance(metadata.signed, Targets):
        raise ReleaseSchemaError(f'{TARGETS}: expected targets metadata, got '
                                 f'{metadata.signed.type}')
    targets = metadata.signed
    result = root.signed.get_verification_result('targets', metadata.signed_bytes,
                                                 metadata.signatures)
    if not result.verified:
        unknown = sorted(set(metadata.signatures) - set(root.signed.keys))
        bad = sorted(set(result.unsigned) & set(metadata.signatures))
        raise UnsignedReleaseError(
            f'{len(result.signed)} valid signature(s) by trusted keys, threshold '
            f'{result.threshold}' + (f'; signed by unknown key(s) {unknown}' if unknown else '')
            + (f'; bad signature(s) by {bad}' if bad else ''))
    if targets.is_expired(now):
        raise ExpiredReleaseError(f'release {targets.version} expired '
                                  f'{targets.expires.isoformat()}')
    if targets.version < installed_number or (targets.version == installed_number
                                              and not allow_same):
        raise RollbackError(f'release number {targets.version} is not newer than the installed '
                            f'{installed_number}')
    pinned = targets.targets.get(SPEC)
    if pinned is None or set(targets.targets) != {SPEC}:
        raise ReleaseSchemaError(f'{TARGETS} must pin exactly {SPEC}')
    try:
        pinned.verify_length_and_hashes(files[SPEC])
    except LengthOrHashMismatchError as exc:
        raise TargetMismatchError(f'{SPEC}: {exc}') from exc
    spec = _parse_spec(files[SPEC])
    custom = pinned.custom if isinstance(pinned.custom, dict) else {}
    if custom.get('oracle_version') != spec.version:
        raise ReleaseSchemaError(f'signed oracle_version {custom.get("oracle_version")!r} differs '
                                 f'from the spec\'s {spec.version!r}')
    return VerifiedRelease(targets.version, spec.version, str(custom.get('parent_version', '')),
                           spec, files[SPEC], hashlib.sha256(bundle).hexdigest(),
                           targets.expires, tuple(sorted(result.signed)), files.get(ROOT))


def spec_version(spec_bytes: bytes) -> str:
    return _parse_spec(spec_bytes).version


def _parse_spec(spec_bytes: bytes) -> OracleSpec:
    try:
        return parse_spec(parse_yaml(spec_bytes.decode('utf-8'), SPEC))
    except (SpecError, UnicodeDecodeError) as exc:
        raise ReleaseSchemaError(f'{SPEC}: {exc}') from exc


def _pack(files: dict[str, bytes]) -> bytes:
    """A deterministic archive: fixed order, times and owners."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w:gz', format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            archive.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()
