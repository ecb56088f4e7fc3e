"""The trust root: TUF root metadata naming the operator keys and how many must sign.

The same key set holds the `root` role (who may rotate the trust root) and the `targets` role
(who may sign Oracle releases); thresholds are set separately. A new root is accepted only if the
threshold of the old root's keys AND the threshold of its own keys signed it, and its version is
exactly one more (TUF's rotation rule).
"""
from __future__ import annotations

from datetime import datetime

from securesystemslib.signer import Key, Signer
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Role, Root

from flywheel.errors import ExpiredReleaseError, ReleaseSchemaError, RootRotationError

ROLES = ('root', 'targets', 'snapshot', 'timestamp')


def new_root(keys: list[Key], root_threshold: int, targets_threshold: int, expires: datetime,
             version: int = 1) -> Metadata[Root]:
    for name, threshold in (('root', root_threshold), ('targets', targets_threshold)):
        if not 1 <= threshold <= len(keys):
            raise ReleaseSchemaError(f'{name} threshold {threshold}: need 1..{len(keys)} '
                                     f'(the number of keys)')
    ids = [k.keyid for k in keys]
    if len(set(ids)) != len(ids):
        raise ReleaseSchemaError('the same key is listed twice')
    thresholds = {'root': root_threshold, 'targets': targets_threshold}
    root = Root(version=version, expires=expires, keys={k.keyid: k for k in keys},
                roles={r: Role(ids, thresholds.get(r, 1)) for r in ROLES})
    return Metadata(root)


def sign(metadata: Metadata, signer: Signer) -> None:
    """Append a signature (signatures by other operators are kept)."""
    metadata.sign(signer, append=True)


def load_root(data: bytes) -> Metadata[Root]:
    try:
        md = Metadata.from_bytes(data)
    except Exception as exc:  # noqa: BLE001 - tuf raises several kinds for malformed metadata
        raise ReleaseSchemaError(f'trust root is not valid TUF metadata: {exc}') from exc
    if not isinstance(md.signed, Root):
        raise ReleaseSchemaError(f'expected root metadata, got {md.signed.type}')
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
