"""verify_submission: the one decision on a submitted release, made the same way by governance
(`Governor.submit`) and by the operator's `flywheel release verify`.

Invariant: given the same bundle, trusted root, time, installed number and size limit, both reach
the same verdict, because both call this function and nothing else decides. A root.json the
bundle carries (and its signed targets pin) is either the trusted root itself, or its next version
signed by the thresholds of the old and the new root (then the release is checked against the new
root, which the caller installs with it); anything else is refused. The root a release is checked
against must not have expired.
"""
from __future__ import annotations

from datetime import datetime

from tuf.api.metadata import Metadata, Root

from flywheel.errors import ExpiredRootError, ReleaseError, RootRotationError
from flywheel.release.bundle import (MAX_BUNDLE_BYTES, ROOT, VerifiedRelease, annotate,
                                     bundle_sha256, check_release, parse_targets, read_bundle)
from flywheel.release.root import load_root, verify_rotation


def verify_submission(bundle: bytes, trusted_root: Metadata[Root], now: datetime,
                      installed_number: int, max_bytes: int = MAX_BUNDLE_BYTES
                      ) -> tuple[VerifiedRelease, Metadata[Root] | None]:
    """The verified release and the rotated root to install with it (None: keep the trusted
    one). Raises a ReleaseError subclass carrying the bundle's sha256 and signing key ids."""
    sha = bundle_sha256(bundle, max_bytes)
    files: dict[str, bytes] = {}
    try:
        files = read_bundle(bundle, max_bytes)
        metadata = parse_targets(files)
        root, rotated = trusted_root, None
        if ROOT in files:
            rotated = carried_root(files[ROOT], trusted_root, now)
            root = rotated or trusted_root
        if root.signed.is_expired(now):
            raise ExpiredRootError(f'trust root v{root.signed.version} expired '
                                   f'{root.signed.expires.isoformat()}: rotate it (a release may '
                                   'carry the next root) before installing releases')
        release = check_release(files, metadata, sha, root, now, installed_number)
    except ReleaseError as exc:
        annotate(exc, sha, files)
        raise
    return release, rotated


def carried_root(data: bytes, trusted: Metadata[Root], now: datetime) -> Metadata[Root] | None:
    """The root to rotate to, None if ``data`` is the trusted root itself; raises otherwise."""
    carried = load_root(data)
    have, got = trusted.signed.version, carried.signed.version
    if got == have:
        if carried.signed_bytes != trusted.signed_bytes:
            raise RootRotationError(f'the carried root v{got} differs from the trusted root '
                                    f'v{have}')
        return None
    if got < have:
        raise RootRotationError(f'the carried root v{got} is older than the trusted root '
                                f'v{have}')
    verify_rotation(trusted, carried, now)
    return carried
