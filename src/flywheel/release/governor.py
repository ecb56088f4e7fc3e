"""Governor: what the governance node decides about releases, with no ROS and no clock of its own.

- submit: `verify_submission` (the same function `flywheel release verify` calls) against the
  trusted root and the highest number ever installed; then the bundle (and a rotated root it
  carries) is stored and, last, the state that makes it active, with the one before as previous.
  Anything refused leaves the active release untouched and is remembered as `last_refusal`, with
  the bundle's sha256 and the signing key ids.
- rollback: only on a request signed by a root-role operator key, with a fresh nonce and a
  deadline at most MAX_ROLLBACK_TTL ahead; the previous release becomes active again.
- load: on restart each retained release is verified again against the trust root that verified
  it on install (old roots are kept by version), so a key rotation never strands it. An active
  release that has since expired is loaded and reported (`Notice` ACTIVE_EXPIRED, and
  `active_expired(now)`): the node keeps the robot stopped rather than run on nothing. A previous
  release that no longer verifies (expired, or damaged) leaves the rollback slot with a
  PREVIOUS_DROPPED notice saying why. A store whose state or active release cannot be read or
  verified is a StoreError naming the file, never a silent fallback.

Invariant: state.json is written only after every check passed and every file it names is in
place, so a crash at any point leaves the previous state whole.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature
from tuf.api.metadata import Metadata, Root

from flywheel.errors import (BadReleaseNumberError, ReleaseError, RollbackError, StoreError,
                             UnpinnedFileError, UnsignedReleaseError)
from flywheel.release.bundle import (MAX_BUNDLE_BYTES, MAX_RELEASE_NUMBER, ROOT, VerifiedRelease,
                                     bundle_sha256, check_release, parse_targets, read_bundle,
                                     verify_bundle)
from flywheel.release.root import check_self_signed, load_root
from flywheel.release.store import MAX_NONCE_CHARS, MAX_NONCES, ReleaseStore, StoreState
from flywheel.release.submission import verify_submission

MAX_ROLLBACK_TTL_NS = 3600 * 10**9   # a signed rollback request is valid at most an hour ahead


def rollback_message(nonce: str, expires_ns: int, to_number: int) -> bytes:
    return f'flywheel.rollback.v1:{nonce}:{int(expires_ns)}:{int(to_number)}'.encode()


@dataclass(frozen=True)
class RollbackRequest:
    key_id: str
    nonce: str
    expires_ns: int
    to_number: int
    signature: str


class NoticeKind(enum.Enum):
    ROOT_INSTALLED = 'root_installed'      # first start: the bootstrap trust root was installed
    ACTIVE_EXPIRED = 'active_expired'      # the active release has expired (keep the robot stopped)
    PREVIOUS_DROPPED = 'previous_dropped'  # the previous release no longer verifies: no rollback


@dataclass(frozen=True)
class Notice:
    """Something `load` found that the ledger should record."""

    kind: NoticeKind
    number: int           # the release number (the root version for ROOT_INSTALLED)
    oracle_version: str   # "" when unknown
    bundle_sha256: str    # "" when unknown
    reason: str


@dataclass(frozen=True)
class Refusal:
    """Why the last submit or rollback was refused, what, and by whom."""

    error: str                      # the ReleaseError subclass name
    reason: str
    bundle_sha256: str = ''         # hex, "" when the bytes could not be hashed
    key_ids: tuple[str, ...] = ()   # signing key ids (verified or not), () when unknown

    @property
    def actor(self) -> str:
        """Short key ids, comma separated (fits GovernanceEvent.actor)."""
        return ','.join(k[:16] for k in self.key_ids[:7])

    def __str__(self) -> str:
        return f'{self.error}: {self.reason}'


@dataclass(frozen=True)
class Submission:
    """A release that passed every check against ``root_version`` with ``installed_max``."""

    release: VerifiedRelease
    rotated: object          # the rotated trust root it carries (tuf Metadata[Root]), or None
    root_version: int
    installed_max: int


class Governor:
    def __init__(self, store: ReleaseStore, max_bytes: int = MAX_BUNDLE_BYTES):
        self.store = store
        self.max_bytes = max_bytes
        self.root: Metadata[Root] | None = None
        self.active: VerifiedRelease | None = None
        self.previous: VerifiedRelease | None = None
        self.last_refusal: Refusal | None = None
        self.notices: tuple[Notice, ...] = ()

    # -- what the node reports ------------------------------------------------------------------

    @property
    def last_rejection(self) -> str:
        return str(self.last_refusal) if self.last_refusal else ''

    @property
    def last_rejection_sha256(self) -> str:
        return self.last_refusal.bundle_sha256 if self.last_refusal else ''

    @property
    def last_rejection_actor(self) -> str:
        return self.last_refusal.actor if self.last_refusal else ''

    def active_expired(self, now: datetime) -> bool:
        """True while the active release's signed expiry has passed (no release may be used)."""
        return self.active is not None and self.active.is_expired(now)

    def bundle_bytes(self, number: int) -> bytes:
        return self.store.bundle(number, self.max_bytes)

    def root_bytes(self, version: int | None = None) -> bytes:
        """The current trust root's bytes, or those of an older ``version`` kept in the store."""
        version = self.root.signed.version if version is None else version
        data = self.store.root_bytes(version)
        if data is None:
            raise StoreError(f'trust root v{version} is not in the store')
        return data

    # -- load -----------------------------------------------------------------------------------

    def load(self, now: datetime, bootstrap_root: bytes | None) -> tuple[Notice, ...]:
        """Trust root from the store (or the bootstrap one, installed), then the retained
        releases; returns (and keeps in ``notices``) what the ledger should record."""
        notices: list[Notice] = []
        state = self.store.state()
        root, state = self._load_root(state, now, bootstrap_root, notices)
        active = previous = None
        if state.active is not None:
            try:
                active = self._reverify(state.active, state.active_root, now, allow_expired=True)
            except ReleaseError as exc:
                raise StoreError(f'the active release {state.active} in {self.store.dir} no '
                                 f'longer verifies ({type(exc).__name__}: {exc}); refusing to '
                                 'start on it') from exc
            state = replace(state, active_root=active.root_version)
            if active.is_expired(now):
                notices.append(Notice(NoticeKind.ACTIVE_EXPIRED, active.number,
                                      active.oracle_version, active.bundle_sha256,
                                      f'release {active.number} expired '
                                      f'{active.expires.isoformat()}'))
        if state.previous is not None:
            try:
                previous = self._reverify(state.previous, state.previous_root, now)
                state = replace(state, previous_root=previous.root_version)
            except ReleaseError as exc:
                notices.append(Notice(NoticeKind.PREVIOUS_DROPPED, state.previous, '',
                                      exc.bundle_sha256, f'{type(exc).__name__}: {exc}'))
                state = replace(state, previous=None, previous_root=None)
        if state != self.store.state():
            self.store.save_state(state)
        self.root, self.active, self.previous = root, active, previous
        self.notices = tuple(notices)
        return self.notices

    def _load_root(self, state: StoreState, now: datetime, bootstrap: bytes | None,
                   notices: list) -> tuple[Metadata[Root], StoreState]:
        if state.root_version is not None:
            data = self.store.root_bytes(state.root_version)
            if data is None:
                raise StoreError(f'{self.store.dir}/state.json names trust root '
                                 f'v{state.root_version}, which is missing')
        else:
            data = self.store.root_bytes()          # a store written before root_version
        if data is None:
            if bootstrap is None:
                raise ReleaseError('no trust root: give trust_root_path for the first start')
            root = load_root(bootstrap)
            check_self_signed(root, now)
            data = bootstrap
            notices.append(Notice(NoticeKind.ROOT_INSTALLED, root.signed.version, '', '',
                                  f'trust root v{root.signed.version} installed from the '
                                  'bootstrap file'))
        else:
            try:
                root = load_root(data)
            except ReleaseError as exc:
                raise StoreError(f'the trust root in {self.store.dir} is unreadable '
                                 f'({type(exc).__name__}: {exc})') from exc
            if state.root_version not in (None, root.signed.version):
                raise StoreError(f'root.v{state.root_version}.json holds version '
                                 f'{root.signed.version}')
        version = root.signed.version
        if self.store.root_bytes(version) != data or self.store.root_bytes() != data:
            self.store.add_root(data, version)      # first start, migration, or a torn rotation
        return root, replace(state, root_version=version)

    def _reverify(self, number: int, root_version: int | None, now: datetime, *,
                  allow_expired: bool = False) -> VerifiedRelease:
        """A stored release verified again against the root that verified it on install (for a
        store that did not record it, the newest stored root that verifies it)."""
        bundle = self.store.bundle(number, self.max_bytes)
        versions = [root_version] if root_version is not None else self.store.root_versions()
        refused: ReleaseError | None = None
        for version in versions:
            data = self.store.root_bytes(version)
            if data is None:
                raise StoreError(f'trust root v{version}, which verified release {number}, is '
                                 f'missing from {self.store.dir}')
            try:
                release = self._verify_stored(bundle, load_root(data), now, number,
                                              allow_expired)
            except UnsignedReleaseError as exc:
                refused = exc
                continue
            if release.number != number:
                raise StoreError(f'releases/{number}.tar.gz holds release {release.number}')
            return release
        raise refused or StoreError(f'no stored trust root to verify release {number}')

    def _verify_stored(self, bundle: bytes, root: Metadata[Root], now: datetime, number: int,
                       allow_expired: bool) -> VerifiedRelease:
        try:
            return verify_bundle(bundle, root, now, number, self.max_bytes, allow_same=True,
                                 allow_expired=allow_expired)
        except UnpinnedFileError:
            # Installed before a carried root.json had to be pinned: that root was verified and
            # stored on install, and the bundle's copy is never read again, so it is set aside.
            files = read_bundle(bundle, self.max_bytes)
            if files.pop(ROOT, None) is None:
                raise
            return check_release(files, parse_targets(files), bundle_sha256(bundle), root, now,
                                 number, allow_same=True, allow_expired=allow_expired)

    # -- submit ---------------------------------------------------------------------------------

    def submit(self, bundle: bytes, now: datetime) -> VerifiedRelease:
        """Verify and install a release (and the rotated root it carries); make it active."""
        return self.install(bundle, self.verify(bundle, now))

    def verify(self, bundle: bytes, now: datetime) -> Submission:
        """Every check, reading nothing but the trusted root and the installed number: the slow
        part, safe to run beside status and rollback (install re-checks what it depends on)."""
        try:
            self._require_loaded()
            root, installed = self.root, self.store.state().installed_max
            release, rotated = verify_submission(bundle, root, now, installed, self.max_bytes)
        except ReleaseError as exc:
            self._refused(exc)
            raise
        return Submission(release, rotated, root.signed.version, installed)

    def install(self, bundle: bytes, submission: Submission) -> VerifiedRelease:
        """Make a verified submission active, if nothing it was verified against has changed."""
        release, rotated = submission.release, submission.rotated
        try:
            state = self.store.state()
            if (self.root.signed.version, state.installed_max) != (submission.root_version,
                                                                   submission.installed_max):
                raise RollbackError(f'release {release.number}: the trust root or the installed '
                                    'release changed while it was verified; submit it again')
            root = rotated or self.root
            new_state = replace(state, active=release.number, active_root=root.signed.version,
                                previous=state.active, previous_root=state.active_root,
                                installed_max=release.number, root_version=root.signed.version)
            self.store.add_bundle(release.number, bundle)
            if rotated is not None:
                self.store.add_root(release.new_root, rotated.signed.version)
            self.store.save_state(new_state)
        except ReleaseError as exc:
            self._refused(exc)
            raise
        self.root = root
        self.previous, self.active = self.active, release
        return release

    # -- rollback -------------------------------------------------------------------------------

    def rollback(self, request: RollbackRequest, now: datetime) -> VerifiedRelease:
        try:
            release = self._rollback(request, now)
        except ReleaseError as exc:
            if not exc.key_ids and isinstance(request.key_id, str):
                exc.key_ids = (request.key_id[:64],)
            self._refused(exc)
            raise
        return release

    def _rollback(self, request: RollbackRequest, now: datetime) -> VerifiedRelease:
        self._require_loaded()
        root_role = self.root.signed.roles['root']
        if request.key_id not in root_role.keyids:
            raise UnsignedReleaseError(f'rollback: key {str(request.key_id)[:16]}... is not a '
                                       'root operator key')
        if not isinstance(request.nonce, str) or not 0 < len(request.nonce) <= MAX_NONCE_CHARS:
            raise RollbackError(f'rollback: the nonce must be 1..{MAX_NONCE_CHARS} characters')
        if not 0 < request.to_number <= MAX_RELEASE_NUMBER:
            raise BadReleaseNumberError(f'rollback: release number {request.to_number} out of '
                                        f'1..{MAX_RELEASE_NUMBER}')
        key = self.root.signed.keys[request.key_id]
        try:
            key.verify_signature(Signature(request.key_id, request.signature),
                                 rollback_message(request.nonce, request.expires_ns,
                                                  request.to_number))
        except (UnverifiedSignatureError, ValueError) as exc:
            raise UnsignedReleaseError('rollback: bad signature') from exc
        now_ns = int(now.timestamp() * 1e9)
        if request.expires_ns <= now_ns:
            raise RollbackError('rollback: the request has expired')
        if request.expires_ns - now_ns > MAX_ROLLBACK_TTL_NS:
            raise RollbackError(f'rollback: the request is valid for '
                                f'{(request.expires_ns - now_ns) / 1e9:.0f} s, more than '
                                f'{MAX_ROLLBACK_TTL_NS // 10**9} s')
        state = self.store.state()
        if request.nonce in state.nonces:
            raise RollbackError('rollback: nonce already used (replayed request)')
        if self.previous is None or request.to_number != self.previous.number:
            have = self.previous.number if self.previous else 'none'
            raise RollbackError(f'rollback: to release {request.to_number}, but the retained '
                                f'previous release is {have}')
        release = self._reverify(self.previous.number, state.previous_root, now)
        self.store.save_state(replace(
            state, active=release.number, active_root=release.root_version, previous=None,
            previous_root=None, nonces=(state.nonces + (request.nonce,))[-MAX_NONCES:]))
        self.active, self.previous = release, None
        return release

    # -- helpers --------------------------------------------------------------------------------

    def _require_loaded(self) -> None:
        if self.root is None:
            raise ReleaseError('governance has no trust root loaded (call load first)')

    def _refused(self, exc: ReleaseError) -> None:
        self.last_refusal = Refusal(type(exc).__name__, str(exc), exc.bundle_sha256,
                                    tuple(exc.key_ids))
