"""The trust root: TUF root metadata naming the operator keys and how many must sign.

The same key set holds the `root` role (who may rotate the trust root) and the `targets` role
(who may sign Oracle releases); thresholds are set separately. A new root is accepted only if the
threshold of the old root's keys AND the threshold of its own keys signed it, and its version is
exactly one more (TUF's rotation rule). Every root that is loaded lists distinct Ed25519 keys
under the ids derived from their material, and has a version in 1..MAX_ROOT_VERSION.
"""
from __future__ import annotations

from datetime import datetime

from securesystemslib.signer import Key, Signer
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Role, Root

from flywheel.errors import (BadReleaseNumberError, DuplicateKeyError, ExpiredReleaseError,
                             ReleaseSchemaError, RootRotationError, RootSchemaError)
from flywheel.release.keys import canonical_key, check_distinct

ROLES = ('root', 'targets', 'snapshot', 'timestamp')
MAX_ROOT_VERSION = 2**32 - 1      # OracleStatus.root_version is a uint32
MAX_ROOT_BYTES = 64 * 1024        # OracleStatus.root holds at most 65,536 bytes


def new_root(keys: list[Key], root_threshold: int, targets_threshold: int, expires: datetime,
             version: int = 1) -> Metadata[Root]:
    for name, threshold in (('root', root_threshold), ('targets', targets_threshold)):
        if not 1 <= threshold <= len(keys):
            raise ReleaseSchemaError(f'{name} threshold {threshold}: need 1..{len(keys)} '
                                     f'(the number of keys)')
    _check_version(version)
    ids = [k.keyid for k in keys]
    if len(set(ids)) != len(ids):
        raise DuplicateKeyError(f'the same key is listed twice: {sorted(ids)}')
    check_distinct(keys, 'new root')
    thresholds = {'root': root_threshold, 'targets': targets_threshold}
    root = Root(version=version, expires=expires, keys={k.keyid: k for k in keys},
                roles={r: Role(ids, thresholds.get(r, 1)) for r in ROLES})
    return Metadata(root)


def sign(metadata: Metadata, signer: Signer) -> None:
    """Append a signature (signatures by other operators are kept)."""
    metadata.sign(signer, append=True)


def load_root(data: bytes) -> Metadata[Root]:
    """Root metadata, checked for shape (not for signatures: see check_self_signed and
    verify_rotation)."""
    if len(data) > MAX_ROOT_BYTES:
        raise RootSchemaError(f'trust root is {len(data)} bytes > {MAX_ROOT_BYTES}')
    try:
        md = Metadata.from_bytes(data)
    except Exception as exc:  # noqa: BLE001 - tuf raises several kinds for malformed metadata
        raise RootSchemaError(f'trust root is not valid TUF metadata: '
                              f'{tuf_reason(exc)}') from exc
    if not isinstance(md.signed, Root):
        raise RootSchemaError(f'expected root metadata, got {md.signed.type}')
    _check_version(md.signed.version)
    for keyid, key in md.signed.keys.items():
        canonical_key(key, f'trust root v{md.signed.version}')
    check_distinct(md.signed.keys.values(), f'trust root v{md.signed.version}')
    for name in ('root', 'targets'):
        role = md.signed.roles[name]
        if role.threshold > len(role.keyids):
            raise RootSchemaError(f'trust root v{md.signed.version}: {name} threshold '
                                  f'{role.threshold} > its {len(role.keyids)} key(s)')
    return md


def check_self_signed(root: Metadata[Root], now: datetime) -> None:
    """A first, installed root must at least carry the threshold of its own keys."""
    try:
        root.signed.verify_delegate('root', root.signed_bytes, root.signatures)
    except UnsignedMetadataError as exc:
        raise RootRotationError(f'trust root v{root.signed.version}: {exc}') from exc
    if root.signed.is_expired(now):
        raise ExpiredReleaseError(f'trust root v{root.signed.version} expired '
                                  f'{root.signed.expires.isoformat()}')


def verify_rotation(old: Metadata[Root], new: Metadata[Root], now: datetime) -> None:
    """Raise unless ``new`` may replace ``old``."""
    if new.signed.version != old.signed.version + 1:
        raise RootRotationError(f'new root version {new.signed.version}, expected '
                                f'{old.signed.version + 1}')
    for who, root in (('old', old), ('new', new)):
        try:
            root.signed.verify_delegate('root', new.signed_bytes, new.signatures)
        except UnsignedMetadataError as exc:
            raise RootRotationError(f'new root v{new.signed.version} lacks the {who} root\'s '
                                    f'threshold: {exc}') from exc
    if new.signed.is_expired(now):
        raise ExpiredReleaseError(f'new root expired {new.signed.expires.isoformat()}')


def tuf_reason(exc: Exception) -> str:
    """tuf wraps the reason (e.g. "threshold should be at least 1!") in a DeserializationError."""
    return f'{exc} ({exc.__cause__})' if exc.__cause__ is not None else str(exc)


def _check_version(version: int) -> None:
    if not 1 <= version <= MAX_ROOT_VERSION:
        raise BadReleaseNumberError(f'trust root version {version}: must be in '
                                    f'1..{MAX_ROOT_VERSION}')
