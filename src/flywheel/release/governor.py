"""Governor: what the governance node decides about releases, with no ROS and no clock of its own.

- submit: verify a bundle against the trusted root (and a root rotation it carries), install it,
  make it active and keep the one before as previous. Anything refused leaves the active release
  untouched and is remembered as the last rejection.
- rollback: only on a request signed by a root-role operator key, with a fresh nonce and an
  unexpired deadline; the previous release becomes active again.
- load: on restart, the active release is verified again (same number allowed, expiry not).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature
from tuf.api.metadata import Metadata, Root

from flywheel.errors import ReleaseError, RollbackError, UnsignedReleaseError
from flywheel.release.bundle import (MAX_BUNDLE_BYTES, ROOT, VerifiedRelease, read_bundle,
                                     verify_bundle)
from flywheel.release.root import check_self_signed, load_root, verify_rotation
from flywheel.release.store import ReleaseStore


def rollback_message(nonce: str, expires_ns: int, to_number: int) -> bytes:
    return f'flywheel.rollback.v1:{nonce}:{int(expires_ns)}:{int(to_number)}'.encode()


@dataclass(frozen=True)
class RollbackRequest:
    key_id: str
    nonce: str
    expires_ns: int
    to_number: int
    signature: str


class Governor:
    def __init__(self, store: ReleaseStore, max_bytes: int = MAX_BUNDLE_BYTES):
        self.store = store
        self.max_bytes = max_bytes
        self.root: Metadata[Root] | None = None
        self.active: VerifiedRelease | None = None
        self.previous: VerifiedRelease | None = None
        self.last_rejection = ''

    def load(self, now: datetime, bootstrap_root: bytes | None) -> None:
        """Trust root from the store (or the bootstrap one, installed), then the active release."""
        data = self.store.root_bytes()
        if data is None:
            if bootstrap_root is None:
                raise ReleaseError('no trust root: give trust_root_path for the first start')
            root = load_root(bootstrap_root)
            check_self_signed(root, now)
            self.store.set_root(bootstrap_root, root.signed.version)
        self.root = load_root(self.store.root_bytes())
        state = self.store.state()
        self.active = self._reverify(state.active, now)
        self.previous = self._reverify(state.previous, now) if state.previous else None

    def _reverify(self, number: int | None, now: datetime) -> VerifiedRelease | None:
        if number is None:
            return None
        return verify_bundle(self.store.bundle(number), self.root, now, number, self.max_bytes,
                             allow_same=True)

    def submit(self, bundle: bytes, now: datetime) -> VerifiedRelease:
        """Install a release; a rotated root it carries is verified first (old and new
        thresholds) and the release is then checked against that new root."""
        try:
            root = self.root
            carried = read_bundle(bundle, self.max_bytes).get(ROOT)
            if carried is not None:
                candidate = load_root(carried)
                if candidate.signed.version > root.signed.version:
                    verify_rotation(root, candidate, now)
                    root = candidate
            release = verify_bundle(bundle, root, now, self.store.state().installed_max,
                                    self.max_bytes)
        except ReleaseError as exc:
            self.last_rejection = f'{type(exc).__name__}: {exc}'
            raise
        if root is not self.root:
            self.store.set_root(carried, root.signed.version)
            self.root = root
        state = self.store.state()
        self.store.add_bundle(release.number, bundle)
        state.previous, state.active = state.active, release.number
        state.installed_max = release.number
        self.store.save_state(state)
        self.previous, self.active = self.active, release
        return release

    def rollback(self, request: RollbackRequest, now: datetime) -> VerifiedRelease:
        try:
            release = self._rollback(request, now)
        except ReleaseError as exc:
            self.last_rejection = f'{type(exc).__name__}: {exc}'
            raise
        return release

    def _rollback(self, request: RollbackRequest, now: datetime) -> VerifiedRelease:
        root_role = self.root.signed.roles['root']
        if request.key_id not in root_role.keyids:
            raise UnsignedReleaseError(f'rollback: key {request.key_id[:16]}... is not a root '
                                       'operator key')
        key = self.root.signed.keys[request.key_id]
        try:
            key.verify_signature(Signature(request.key_id, request.signature),
                                 rollback_message(request.nonce, request.expires_ns,
                                                  request.to_number))
        except (UnverifiedSignatureError, ValueError) as exc:
            raise UnsignedReleaseError('rollback: bad signature') from exc
        if request.expires_ns <= int(now.timestamp() * 1e9):
            raise RollbackError('rollback: the request has expired')
        state = self.store.state()
        if not request.nonce or request.nonce in state.nonces:
            raise RollbackError('rollback: nonce already used (replayed request)')
        if self.previous is None or request.to_number != self.previous.number:
            have = self.previous.number if self.previous else 'none'
            raise RollbackError(f'rollback: to release {request.to_number}, but the retained '
                                f'previous release is {have}')
        release = self._reverify(self.previous.number, now)
        state.nonces = (state.nonces + [request.nonce])[-1000:]
        state.active, state.previous = release.number, None
        self.store.save_state(state)
        self.active, self.previous = release, None
        return release
