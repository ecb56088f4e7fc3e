"""Governor: what the governance node decides about releases, with no ROS and no clock of its own.

- submit: `verify_submission` (the same function `flywheel release verify` calls) against the
  trusted root and the highest number ever installed; then the bundle (and a rotated root it
  carries) is stored and, last, the state that makes it active, with the one before as previous.
  Anything refused leaves the active release untouched and is remembered as `last_refusal`, with
  the bundle's sha256 and the signing key ids.
- staged rollout (flywheel/release/rollout.py): `accept` installs a verified release at once when
  its plan (the signed one it carries, else the default) is just [full] or nothing is active yet;
  otherwise it becomes the *candidate* beside the active release (its number is burnt all the
  same) and its Rollout starts. A regression suite the release carries must pass 100 % first
  (RegressionFailedError lists the failed cases). The candidate becomes active (the active one
  previous) only when its last stage before full succeeds (`tick`/`advance`) or on a signed
  operator promote of that stage (`rollout_request`); a failure, an operator abort, its expiry or
  a newer release drops it. There is deliberately no unsigned "promote now".
- rollback: only on a request signed by a root-role operator key, with a fresh nonce and a
  deadline at most MAX_ROLLBACK_TTL ahead; the previous release becomes active again. A rollout
  request (promote or abort) is checked the same way; both record their nonce in the store.
- load: on restart each retained release is verified again against the trust root that verified
  it on install (old roots are kept by version), so a key rotation never strands it. An active
  release that has since expired is loaded and reported (`Notice` ACTIVE_EXPIRED, and
  `active_expired(now)`): the node keeps the robot stopped rather than run on nothing. A previous
  release that no longer verifies (expired, or damaged) leaves the rollback slot with a
  PREVIOUS_DROPPED notice saying why. A candidate is verified again too and its rollout resumes
  in the same stage with its clock restarted (ROLLOUT_RESUMED); one that no longer verifies is
  dropped (CANDIDATE_DROPPED), never fatal. A store whose state or active release cannot be read
  or verified is a StoreError naming the file, never a silent fallback.

Invariant: state.json is written only after every check passed and every file it names is in
place, so a crash at any point leaves the previous state whole; the rollout state is part of it,
so a crash (kill -9 included) resumes a rollout no further along than it was, in a stage that
enforces at least the active release.
"""
from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature
from tuf.api.metadata import Metadata, Root

from flywheel.enforcement.policy import RiskPolicy
from flywheel.errors import (BadReleaseNumberError, RegressionFailedError, ReleaseError,
                             RollbackError, RolloutError, RolloutRequiredError, StoreError,
                             UnpinnedFileError, UnsignedReleaseError)
from flywheel.oracle.oracle import Oracle
from flywheel.proposal import ProposalLimits
from flywheel.release.bundle import (MAX_BUNDLE_BYTES, MAX_RELEASE_NUMBER, ROOT, VerifiedRelease,
                                     bundle_sha256, check_release, parse_targets, read_bundle,
                                     verify_bundle)
from flywheel.release.regression import SUITE_PROPOSER, run_suite
from flywheel.release.rollout import (ACTIONS, DEFAULT_PLAN, Ended, Event, Outcome, Rollout,
                                      RolloutPlan, RolloutRequest, StageAnalysis,
                                      rollout_message)
from flywheel.release.root import check_self_signed, load_root
from flywheel.release.store import MAX_NONCE_CHARS, MAX_NONCES, ReleaseStore, StoreState
from flywheel.release.submission import verify_submission

MAX_ROLLBACK_TTL_NS = 3600 * 10**9   # a signed rollback request is valid at most an hour ahead
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

__all__ = ['Accepted', 'Governor', 'Notice', 'NoticeKind', 'Refusal', 'RollbackRequest',
           'RolloutRequest', 'Submission', 'rollback_message', 'rollout_message']


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
    CANDIDATE_DROPPED = 'candidate_dropped'  # the candidate no longer verifies: rollout aborted
    ROLLOUT_RESUMED = 'rollout_resumed'    # a rollout resumes its stage from the start


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


@dataclass(frozen=True)
class Accepted:
    """What `accept` did with a verified release: made it active at once (``staged`` False) or
    the candidate of a rollout; ``events`` for the ledger (a superseded candidate aborted, the
    first stage started)."""

    release: VerifiedRelease
    staged: bool
    events: tuple[Event, ...] = ()


class Governor:
    """``default_plan`` is the plan of releases that carry none (config/rollout.yaml);
    ``policy`` (the Gate's) and ``limits`` (the Oracle's) run the regression suites releases
    carry: without a policy, a release carrying a suite is refused."""

    def __init__(self, store: ReleaseStore, max_bytes: int = MAX_BUNDLE_BYTES, *,
                 default_plan: RolloutPlan = DEFAULT_PLAN, policy: RiskPolicy | None = None,
                 limits: ProposalLimits | None = None):
        self.store = store
        self.max_bytes = max_bytes
        self.default_plan = default_plan
        self.policy = policy
        self.limits = limits
        self.root: Metadata[Root] | None = None
        self.active: VerifiedRelease | None = None
        self.previous: VerifiedRelease | None = None
        self.candidate: VerifiedRelease | None = None   # the release in staged rollout
        self.rollout: Rollout | None = None             # its state (None: no rollout)
        self.analysis: StageAnalysis | None = None      # its current stage's evidence
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
        candidate, rollout, state = self._load_candidate(state, active, now, notices)
        if state != self.store.state():
            self.store.save_state(state)
        self.root, self.active, self.previous = root, active, previous
        self.candidate, self.rollout = candidate, rollout
        self.analysis = StageAnalysis(rollout.stage) if rollout is not None else None
        self.notices = tuple(notices)
        return self.notices

    def _load_candidate(self, state: StoreState, active: VerifiedRelease | None, now: datetime,
                        notices: list) -> tuple[VerifiedRelease | None, Rollout | None,
                                                StoreState]:
        """The candidate verified again and its rollout resumed, or dropped with a notice."""
        if state.candidate is None:
            return None, None, state
        version = ''
        try:
            rollout = Rollout.from_dict(state.rollout)
            version = rollout.version
            candidate = self._reverify(state.candidate, state.candidate_root, now)
            if active is None:
                raise RolloutError('no active release to roll it out beside')
            if candidate.oracle_version != rollout.version:
                raise RolloutError(f'its rollout names Oracle {rollout.version!r}, the release '
                                   f'{candidate.oracle_version!r}')
            if candidate.plan is not None and candidate.plan != rollout.plan:
                raise RolloutError('its rollout plan differs from the signed one it carries')
            if rollout.ended is not None:
                raise RolloutError(f'its rollout had already ended ({rollout.ended.value})')
        except (ReleaseError, ValueError) as exc:
            notices.append(Notice(NoticeKind.CANDIDATE_DROPPED, state.candidate, version,
                                  getattr(exc, 'bundle_sha256', ''),
                                  f'{type(exc).__name__}: {exc}; its rollout is aborted and '
                                  'the active release alone governs'))
            return None, None, replace(state, candidate=None, candidate_root=None, rollout=None)
        events = rollout.resume(_ns(now))
        notices.append(Notice(NoticeKind.ROLLOUT_RESUMED, candidate.number,
                              candidate.oracle_version, candidate.bundle_sha256,
                              events[0].reason if events else ''))
        return candidate, rollout, replace(state, candidate_root=candidate.root_version,
                                           rollout=rollout.to_dict())

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
        """Verify a release and `accept` it: active at once, or the candidate of a rollout."""
        return self.accept(bundle, self.verify(bundle, now), now).release

    def plan_for(self, release: VerifiedRelease) -> RolloutPlan:
        """The signed plan the release carries, else the default."""
        return release.plan if release.plan is not None else self.default_plan

    def verify(self, bundle: bytes, now: datetime) -> Submission:
        """Every check, reading nothing but the trusted root and the installed number, then the
        regression suite the release carries: the slow part, safe to run beside status and
        rollback (accept re-checks what it depends on)."""
        try:
            self._require_loaded()
            root, installed = self.root, self.store.state().installed_max
            release, rotated = verify_submission(bundle, root, now, installed, self.max_bytes)
        except ReleaseError as exc:
            self._refused(exc)
            raise
        try:
            self._check_suite(release)
        except ReleaseError as exc:
            self._refused(_about(exc, release))
            raise
        return Submission(release, rotated, root.signed.version, installed)

    def accept(self, bundle: bytes, submission: Submission, now: datetime) -> Accepted:
        """A verified submission (its suite passed in `verify`) made active at once (its plan
        is [full], or nothing is active to roll it out beside) or staged as the candidate, its
        rollout started; a candidate already in rollout is superseded either way."""
        release = submission.release
        plan = self.plan_for(release)
        if plan.immediate or self.active is None:
            events = self._install(bundle, submission, _ns(now))
            return Accepted(release, False, events)
        return self._stage(bundle, submission, plan, now)

    def install(self, bundle: bytes, submission: Submission,
                now: datetime | None = None) -> VerifiedRelease:
        """Make a verified submission active at once, if its plan allows it (RolloutRequiredError
        otherwise: use `accept`) and nothing it was verified against has changed."""
        release = submission.release
        if not self.plan_for(release).immediate and self.active is not None:
            exc = RolloutRequiredError(
                f'release {release.number} has a staged rollout plan '
                f'({", ".join(s.value for s in self.plan_for(release).stages)}): it cannot '
                'become active at once')
            exc.bundle_sha256, exc.key_ids = release.bundle_sha256, release.signed_by
            self._refused(exc)
            raise exc
        self._install(bundle, submission, _ns(now) if now is not None else 0)
        return release

    def _install(self, bundle: bytes, submission: Submission,
                 now_ns: int) -> tuple[Event, ...]:
        release, rotated = submission.release, submission.rotated
        try:
            state = self._unchanged(submission)
            events: tuple[Event, ...] = ()
            if self.rollout is not None:
                events = tuple(copy.deepcopy(self.rollout).abort(
                    f'superseded by release {release.number}', now_ns))
            root = rotated or self.root
            new_state = replace(state, active=release.number, active_root=root.signed.version,
                                previous=state.active, previous_root=state.active_root,
                                installed_max=release.number, root_version=root.signed.version,
                                candidate=None, candidate_root=None, rollout=None)
            self.store.add_bundle(release.number, bundle)
            if rotated is not None:
                self.store.add_root(release.new_root, rotated.signed.version)
            self.store.save_state(new_state)
        except ReleaseError as exc:
            self._refused(_about(exc, release))
            raise
        self.root = root
        self.previous, self.active = self.active, release
        self.candidate = self.rollout = self.analysis = None
        return events

    def _stage(self, bundle: bytes, submission: Submission, plan: RolloutPlan,
               now: datetime) -> Accepted:
        release, rotated = submission.release, submission.rotated
        now_ns = _ns(now)
        try:
            state = self._unchanged(submission)
            events: list[Event] = []
            if self.rollout is not None:
                events += copy.deepcopy(self.rollout).abort(
                    f'superseded by release {release.number}', now_ns)
            rollout, started = Rollout.start(release.number, release.oracle_version, plan,
                                             now_ns)
            events += started
            root = rotated or self.root
            new_state = replace(state, candidate=release.number,
                                candidate_root=root.signed.version, rollout=rollout.to_dict(),
                                installed_max=release.number, root_version=root.signed.version)
            self.store.add_bundle(release.number, bundle)
            if rotated is not None:
                self.store.add_root(release.new_root, rotated.signed.version)
            self.store.save_state(new_state)
        except ReleaseError as exc:
            self._refused(_about(exc, release))
            raise
        self.root = root
        self.candidate, self.rollout = release, rollout
        self.analysis = StageAnalysis(rollout.stage)
        return Accepted(release, True, tuple(events))

    def _unchanged(self, submission: Submission) -> StoreState:
        """The store state, if the root and installed number are still those it was verified
        against."""
        state = self.store.state()
        if (self.root.signed.version, state.installed_max) != (submission.root_version,
                                                               submission.installed_max):
            raise RollbackError(f'release {submission.release.number}: the trust root or the '
                                'installed release changed while it was verified; submit it '
                                'again')
        return state

    def _check_suite(self, release: VerifiedRelease) -> None:
        """The release's regression suite, run with its own Oracle and the Gate's policy."""
        suite = release.regression
        if suite is None:
            return
        if self.policy is None:
            raise RegressionFailedError(f'release {release.number} carries a regression suite '
                                        'but governance has no risk policy to run it with')
        limits = replace(self.limits or ProposalLimits(allowed_proposers=(SUITE_PROPOSER,)),
                         frame_id=release.spec.frame_id)
        result = run_suite(suite, Oracle(release.spec, limits), self.policy)
        if not result.passed:
            shown = '; '.join(str(f) for f in result.failures[:8])
            more = len(result.failures) - 8
            raise RegressionFailedError(
                f'release {release.number}: regression suite failed {len(result.failures)} of '
                f'{result.cases} case(s): {shown}' + (f'; and {more} more' if more > 0 else ''),
                result.failures)

    # -- rollout --------------------------------------------------------------------------------

    def observe(self, observation) -> None:
        """One proposal's pair of verdicts (a rollout.Observation) for the current stage."""
        if self.analysis is not None:
            self.analysis.add(observation)

    def tick(self, now: datetime, robots: frozenset[str] = frozenset()) -> tuple[Event, ...]:
        """The current stage's outcome applied (call it periodically): the candidate expired
        aborts; SUCCESS (every robot of ``robots`` heard) moves on (promotes after the last
        stage); FAILURE aborts; INCONCLUSIVE pauses. Persisted before it takes effect; () when
        nothing changed."""
        if self.rollout is None:
            return ()
        if self.candidate.is_expired(now):
            return self.drop_candidate(f'release {self.candidate.number} expired '
                                       f'{self.candidate.expires.isoformat()}', now)
        outcome = self.analysis.outcome(_ns(now), self.rollout.started_ns, self.rollout.rule,
                                        robots)
        return self.advance(outcome, now)

    def advance(self, outcome: Outcome, now: datetime) -> tuple[Event, ...]:
        """`tick` with an outcome computed elsewhere (e.g. over a fleet's observations); one of
        another stage or of a stage run before a restart is ignored."""
        if self.rollout is None:
            return ()
        after = copy.deepcopy(self.rollout)
        events = after.step(outcome, _ns(now))
        return self._commit(after, events, now) if events else ()

    def drop_candidate(self, reason: str, now: datetime) -> tuple[Event, ...]:
        """Abort the rollout (always allowed, needs no signature: it only takes the candidate
        out of force)."""
        if self.rollout is None:
            return ()
        after = copy.deepcopy(self.rollout)
        return self._commit(after, after.abort(reason, _ns(now)), now)

    def rollout_request(self, request: RolloutRequest,
                        now: datetime) -> tuple[str, tuple[Event, ...]]:
        """A signed operator request to promote (the current stage passes) or abort the rollout,
        checked like a rollback; returns the action and the events."""
        try:
            events = self._rollout_request(request, now)
        except ReleaseError as exc:
            if not exc.key_ids and isinstance(request.key_id, str):
                exc.key_ids = (request.key_id[:64],)
            self._refused(exc)
            raise
        return request.action, events

    def _rollout_request(self, request: RolloutRequest, now: datetime) -> tuple[Event, ...]:
        self._require_loaded()
        if request.action not in ACTIONS:
            raise RolloutError(f'rollout: unknown action {str(request.action)[:32]!r} (known: '
                               f'{", ".join(ACTIONS)})')
        if isinstance(request.number, bool) or not isinstance(request.number, int) \
                or not 0 < request.number <= MAX_RELEASE_NUMBER:
            raise BadReleaseNumberError(f'rollout: release number {request.number!r} out of '
                                        f'1..{MAX_RELEASE_NUMBER}')
        state = self._check_operator_request(
            'rollout', request.key_id, request.nonce, request.expires_ns, request.signature,
            lambda: rollout_message(request.action, request.nonce, request.expires_ns,
                                    request.number), now, RolloutError)
        if self.rollout is None or request.number != self.rollout.number:
            have = self.rollout.number if self.rollout else 'none'
            raise RolloutError(f'rollout: of release {request.number}, but the release in '
                               f'rollout is {have}')
        after = copy.deepcopy(self.rollout)
        by = f'operator {request.key_id[:16]}'
        if request.action == 'promote':
            if self.candidate.is_expired(now):
                raise RolloutError(f'rollout: release {request.number} has expired')
            events = after.promote(_ns(now), by)
        else:
            events = after.abort(f'aborted by {by}', _ns(now))
        return self._commit(after, events, now, nonce=request.nonce, state=state)

    def _commit(self, after: Rollout, events: list[Event], now: datetime, *,
                nonce: str | None = None, state: StoreState | None = None
                ) -> tuple[Event, ...]:
        """Persist ``after`` (the rollout once ``events`` happened), then take it in: promoted
        makes the candidate active, aborted drops it. A candidate whose bundle no longer verifies
        when it would be promoted is aborted instead."""
        state = state or self.store.state()
        if nonce is not None:
            state = replace(state, nonces=(state.nonces + (nonce,))[-MAX_NONCES:])
        promoted = None
        if after.ended is Ended.PROMOTED:
            try:
                promoted = self._reverify(self.candidate.number, state.candidate_root, now)
            except ReleaseError as exc:
                after = copy.deepcopy(self.rollout)
                events = after.abort(
                    f'release {self.candidate.number} no longer verifies at promotion '
                    f'({type(exc).__name__}: {exc})', _ns(now))
        if after.ended is Ended.PROMOTED:
            new_state = replace(state, active=promoted.number,
                                active_root=promoted.root_version, previous=state.active,
                                previous_root=state.active_root, candidate=None,
                                candidate_root=None, rollout=None)
        elif after.ended is Ended.ABORTED:
            new_state = replace(state, candidate=None, candidate_root=None, rollout=None)
        else:
            new_state = replace(state, rollout=after.to_dict())
        self.store.save_state(new_state)
        before = self.rollout
        if after.ended is Ended.PROMOTED:
            self.previous, self.active = self.active, promoted
        if after.ended is not None:
            self.candidate = self.rollout = self.analysis = None
        else:
            self.rollout = after
            if (after.index, after.started_ns) != (before.index, before.started_ns):
                self.analysis = StageAnalysis(after.stage)
        return tuple(events)

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
        if isinstance(request.to_number, bool) or not isinstance(request.to_number, int) \
                or not 0 < request.to_number <= MAX_RELEASE_NUMBER:
            raise BadReleaseNumberError(f'rollback: release number {request.to_number!r} out '
                                        f'of 1..{MAX_RELEASE_NUMBER}')
        state = self._check_operator_request(
            'rollback', request.key_id, request.nonce, request.expires_ns, request.signature,
            lambda: rollback_message(request.nonce, request.expires_ns, request.to_number), now,
            RollbackError)
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

    def _check_operator_request(self, what: str, key_id, nonce, expires_ns, signature, message,
                                now: datetime, error: type[ReleaseError]) -> StoreState:
        """A request signed by a root-role operator key over ``message()``, with a nonce never
        used before and a deadline not past and at most MAX_ROLLBACK_TTL_NS ahead; returns the
        store state the nonce was checked against."""
        if key_id not in self.root.signed.roles['root'].keyids:
            raise UnsignedReleaseError(f'{what}: key {str(key_id)[:16]}... is not a root '
                                       'operator key')
        if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_CHARS:
            raise error(f'{what}: the nonce must be 1..{MAX_NONCE_CHARS} characters')
        if isinstance(expires_ns, bool) or not isinstance(expires_ns, int):
            raise error(f'{what}: expires_ns must be an integer, got {expires_ns!r}')
        key = self.root.signed.keys[key_id]
        try:
            key.verify_signature(Signature(key_id, signature), message())
        except (UnverifiedSignatureError, ValueError) as exc:
            raise UnsignedReleaseError(f'{what}: bad signature') from exc
        now_ns = _ns(now)
        if expires_ns <= now_ns:
            raise error(f'{what}: the request has expired')
        if expires_ns - now_ns > MAX_ROLLBACK_TTL_NS:
            raise error(f'{what}: the request is valid for {(expires_ns - now_ns) / 1e9:.0f} s, '
                        f'more than {MAX_ROLLBACK_TTL_NS // 10**9} s')
        state = self.store.state()
        if nonce in state.nonces:
            raise error(f'{what}: nonce already used (replayed request)')
        return state

    def _require_loaded(self) -> None:
        if self.root is None:
            raise ReleaseError('governance has no trust root loaded (call load first)')

    def _refused(self, exc: ReleaseError) -> None:
        self.last_refusal = Refusal(type(exc).__name__, str(exc), exc.bundle_sha256,
                                    tuple(exc.key_ids))


def _ns(now: datetime) -> int:
    """Wall-clock ns of an aware datetime, exactly (no float rounding)."""
    return (now - _EPOCH) // timedelta(microseconds=1) * 1000


def _about(exc: ReleaseError, release: VerifiedRelease) -> ReleaseError:
    """``exc`` naming the (verified) release it refused."""
    exc.bundle_sha256 = exc.bundle_sha256 or release.bundle_sha256
    exc.key_ids = exc.key_ids or release.signed_by
    return exc
