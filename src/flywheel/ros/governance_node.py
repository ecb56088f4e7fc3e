"""governance_node: a lifecycle node that owns the trust root and the release store, verifies and
installs signed Oracle releases, answers rollbacks, and tells the Oracle what to run and the Gate
which versions count. While not active it accepts nothing (and records each refusal).

Everything it does or refuses is a GovernanceEvent on a sequence-numbered, transient-local stream,
its lifecycle transitions included, so the audit records it even if it starts later. Security
checks (expiry of releases, roots and rollback requests) use the wall clock, never ROS time: under
sim time nothing would ever expire.

The coverage overlay (flywheel/release/overlay.py says why it is built this way): a VERIFICATION
record from a robot's Gate that embeds a safe answer is counted only if the verifier's own
signature holds against governance's trust root (the Gate is not trusted to vouch for it), in
sequence, about the active release; each change of the overlay is persisted (overlay.json in the
store), recorded as an EVENT_OVERLAY event and sent to every robot's Oracle signed.

Verifying a submitted release (archive, signatures, schema: up to a second for a spec at the size
limits) runs on a thread of its own; status, rollback and the heartbeat are answered on another,
and the governor changes state under one lock, so a slow or hostile submission never delays them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from array import array
from datetime import datetime, timezone
from pathlib import Path

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from alignment_flywheel.msg import CoverageOverlay as CoverageOverlayMsg
from alignment_flywheel.msg import GateDecision, GovernanceEvent, OracleRelease, OracleRunning
from alignment_flywheel.msg import OracleStatus as OracleStatusMsg
from alignment_flywheel.srv import GetStatus, Rollback, SubmitRelease
from alignment_flywheel.srv import Rollout as RolloutSrv
from flywheel.auth import ORACLE, Keyring, load_message_key
from flywheel.enforcement.policy import load_policy
from flywheel.errors import FlywheelError, ReleaseError
from flywheel.health import Level
from flywheel.oracle.directive import Directive, running_bytes
from flywheel.oracle_status import OracleStatus
from flywheel.provision import NODE_KEYS, ROOT, key_path
from flywheel.release.config import GovernanceConfig
from flywheel.release.governor import Governor, NoticeKind, RollbackRequest
from flywheel.release.overlay import OverlayBook
from flywheel.release.rollout import EventKind, RolloutRequest, canary_members, load_default_plan
from flywheel.release.rollout import Stage as RolloutStage
from flywheel.release.store import ReleaseStore, write_atomic
from flywheel.release.swap import Swap
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.answer_msgs import answer_from_msg
from flywheel.ros.convert import status_to_msg, to_time
from flywheel.ros.overlay_msgs import overlay_to_msg
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.rollout_feed import RolloutFeed
from flywheel.ros.run import run_node

HEARTBEAT_S = 1.0
OVERLAY_FILE = 'overlay.json'
_NOTICE_EVENTS = {NoticeKind.ROOT_INSTALLED: GovernanceEvent.EVENT_ROOT_INSTALLED,
                  NoticeKind.ACTIVE_EXPIRED: GovernanceEvent.EVENT_REJECTED,
                  NoticeKind.PREVIOUS_DROPPED: GovernanceEvent.EVENT_DROPPED,
                  NoticeKind.CANDIDATE_DROPPED: GovernanceEvent.EVENT_ABORTED,
                  NoticeKind.ROLLOUT_RESUMED: GovernanceEvent.EVENT_RESUMED}
_ROLLOUT_EVENTS = {EventKind.STAGE_STARTED: GovernanceEvent.EVENT_STAGE_STARTED,
                   EventKind.STAGE_PASSED: GovernanceEvent.EVENT_STAGE_PASSED,
                   EventKind.STAGE_FAILED: GovernanceEvent.EVENT_STAGE_FAILED,
                   EventKind.PAUSED: GovernanceEvent.EVENT_PAUSED,
                   EventKind.PROMOTED: GovernanceEvent.EVENT_PROMOTED,
                   EventKind.ABORTED: GovernanceEvent.EVENT_ABORTED,
                   EventKind.RESUMED: GovernanceEvent.EVENT_RESUMED}
_STATUS_STAGES = {RolloutStage.SHADOW: OracleStatusMsg.STAGE_SHADOW,
                  RolloutStage.CANARY: OracleStatusMsg.STAGE_CANARY}


class Robot:
    """One governed robot (namespace ``ns``; "" is the node's own): where its status and
    directives go, what its Oracle reports it runs, and its Gate's records for the rollout."""

    def __init__(self, node: 'GovernanceNode', ns: str, group):
        self.ns = ns
        self.name = ns or node.get_namespace()
        topic = (lambda t: f'{ns.rstrip("/")}/{t}') if ns else (lambda t: t)
        self.status_pub = node.create_publisher(OracleStatusMsg, topic(topics.ORACLE_STATUS),
                                                qos.STATUS)
        self.release_pub = node.create_publisher(OracleRelease, topic(topics.ORACLE_RELEASE),
                                                 qos.STATUS)
        self.overlay_pub = node.create_publisher(CoverageOverlayMsg,
                                                 topic(topics.ORACLE_OVERLAY), qos.STATUS)
        node.create_subscription(OracleRunning, topic(topics.ORACLE_RUNNING),
                                 lambda m: node.on_oracle_running(self, m), qos.STATUS,
                                 callback_group=group)
        node.create_subscription(GateDecision, topic(topics.GATE_DECISIONS),
                                 lambda m: node.on_gate_record(self, m), qos.RECORDS,
                                 callback_group=group)
        self.running = ''             # the versions its Oracle reports it runs
        self.running_candidate = ''
        self.swap: Swap | None = None
        self.feed: RolloutFeed | None = None


class GovernanceNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__('governance', **kwargs)
        self.config = declare_config(self, GovernanceConfig)
        self.key = (load_message_key(key_path(self.config.signing_key_path,
                                              NODE_KEYS['governance']))
                    if self.config.authenticate else None)
        self.governor: Governor | None = None
        self.problem = ''             # why the last configure failed
        self.active = False
        self.epoch = time.time_ns()
        self.event_seq = self.status_seq = self.directive_seq = self.overlay_seq = 0
        self.overlays: OverlayBook | None = None
        self._lock = threading.RLock()          # every change of governor state, and publishing
        submissions = MutuallyExclusiveCallbackGroup()
        control = MutuallyExclusiveCallbackGroup()
        self.events_pub = self.create_publisher(GovernanceEvent, topics.GOVERNANCE_EVENTS,
                                                qos.RECORDS)
        self.robots = [Robot(self, ns, control) for ns in dict.fromkeys(self.config.robots)]
        self.create_service(SubmitRelease, topics.SUBMIT_RELEASE, self.on_submit,
                            callback_group=submissions)
        self.create_service(Rollback, topics.ROLLBACK, self.on_rollback, callback_group=control)
        self.create_service(RolloutSrv, topics.ROLLOUT, self.on_rollout, callback_group=control)
        self.create_service(GetStatus, topics.GET_STATUS, self.on_get_status,
                            callback_group=control)
        self.create_timer(HEARTBEAT_S, self.on_heartbeat, callback_group=control)
        diagnostics.report_health(self, 'governance', self.health, callback_group=control)

    @staticmethod
    def make_executor() -> MultiThreadedExecutor:
        return MultiThreadedExecutor(num_threads=3)

    @staticmethod
    def wall_ns() -> int:
        return time.time_ns()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall_ns() / 1e9, tz=timezone.utc)

    # -- lifecycle ------------------------------------------------------------------------------

    def store_dir(self) -> Path:
        ros_home = Path(os.environ.get('ROS_HOME', Path.home() / '.ros'))
        return (Path(self.config.store_dir).expanduser() if self.config.store_dir
                else ros_home / 'alignment_flywheel' / 'releases')

    def bootstrap_root_path(self) -> Path:
        return key_path(self.config.trust_root_path, ROOT)

    def has_trust_root(self) -> bool:
        return (self.bootstrap_root_path().is_file()
                or (self.store_dir() / 'root.json').is_file())

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        store_dir = self.store_dir()
        try:
            bootstrap = (self.bootstrap_root_path().read_bytes()
                         if self.bootstrap_root_path().is_file() else None)
            governor = Governor(
                ReleaseStore(store_dir), self.config.max_bundle_bytes,
                default_plan=load_default_plan(config_path(self.config.rollout_plan_path)),
                policy=load_policy(config_path(self.config.policy_path)))
            notices = governor.load(self.now(), bootstrap)
            overlays = self._load_overlays(store_dir)
        except (OSError, FlywheelError, ValueError) as exc:
            self.problem = f'cannot configure: {exc}'
            self.get_logger().error(f'{self.problem}; nothing is accepted (the robot stays '
                                    'stopped) until a configure succeeds')
            self._transition('configure', 'unconfigured', 'unconfigured', f'failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.governor, self.problem = governor, ''
        self.overlays = overlays
        for notice in notices:
            event = _NOTICE_EVENTS[notice.kind]
            (self.get_logger().info if event in (GovernanceEvent.EVENT_ROOT_INSTALLED,
                                                 GovernanceEvent.EVENT_RESUMED)
             else self.get_logger().warning)(notice.reason)
            self._event(event, notice.oracle_version, notice.number, '', notice.reason,
                        notice.bundle_sha256)
        self._follow_rollout()
        active = governor.active
        self.get_logger().info(f'configured: store {store_dir}, root v'
                               f'{governor.root.signed.version}, active release '
                               f'{active.oracle_version if active else "none"}'
                               + (f', candidate {governor.candidate.oracle_version} in '
                                  f'{governor.rollout.stage.name.lower()}'
                                  if governor.rollout else ''))
        self._transition('configure', 'unconfigured', 'inactive')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self.active = True
        self._transition('activate', 'inactive', 'active')
        with self._lock:
            self._publish_release(rollback=False)
            if self.governor.active is not None:
                self._publish_overlay()
        return result

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self._transition('deactivate', 'active', 'inactive')
        self._publish_status()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.governor = None
        self._transition('cleanup', 'inactive', 'unconfigured')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self._transition('shutdown', state.label, 'finalized')
        return TransitionCallbackReturn.SUCCESS

    # -- services -------------------------------------------------------------------------------

    def on_submit(self, request, response):
        if not self.active:
            response.reason = 'governance is not active'
            self._event(GovernanceEvent.EVENT_REJECTED, '', 0, '', response.reason)
            return response
        try:
            bundle = self._read_bundle(request)
        except (OSError, ReleaseError) as exc:
            response.reason = f'cannot read {request.bundle_path}: {exc}'
            self._event(GovernanceEvent.EVENT_REJECTED, '', 0, '', response.reason)
            return response
        governor = self.governor
        self._event(GovernanceEvent.EVENT_SUBMITTED, '', 0, '', 'submitted',
                    hashlib.sha256(bundle).hexdigest())
        try:
            submission = governor.verify(bundle, self.now())     # the slow part: off the lock
            with self._lock:
                previous = governor.active
                accepted = governor.accept(bundle, submission, self.now())
                self._follow_rollout()
                self._publish_release(rollback=False)
        except ReleaseError:
            response.reason = governor.last_rejection
            self.get_logger().error(f'release refused: {response.reason}')
            self._event(GovernanceEvent.EVENT_REJECTED, '', 0, '', response.reason,
                        governor.last_rejection_sha256, governor.last_rejection_actor)
            self._publish_status()
            return response
        release = accepted.release
        old = previous.oracle_version if previous else ''
        signers = ','.join(k[:16] for k in release.signed_by)
        self._event(GovernanceEvent.EVENT_VERIFIED, release.oracle_version, release.number, old,
                    'verified', release.bundle_sha256, signers)
        if not accepted.staged:
            self._event(GovernanceEvent.EVENT_INSTALLED, release.oracle_version, release.number,
                        old, 'installed', release.bundle_sha256, signers)
        self._rollout_events(accepted.events)
        self.get_logger().info(
            f'release {release.number} (Oracle {release.oracle_version}) '
            + (f'staged: {governor.rollout.stage.name.lower()} beside {old}' if accepted.staged
               else 'installed; swapping'))
        response.accepted, response.oracle_version = True, release.oracle_version
        response.number = release.number
        return response

    def _read_bundle(self, request) -> bytes:
        """The bundle bytes; a path must name a regular file no larger than the limit (any DDS
        participant can call this service, so it must not make the node read /dev/zero)."""
        if not request.bundle_path:
            return bytes(request.bundle)
        path = Path(request.bundle_path)
        info = path.stat()
        if not path.is_file() or info.st_size > self.config.max_bundle_bytes:
            raise ReleaseError(f'not a regular file of at most {self.config.max_bundle_bytes} '
                               'bytes')
        return path.read_bytes()

    def on_rollback(self, request, response):
        if not self.active:
            response.reason = 'governance is not active'
            self._event(GovernanceEvent.EVENT_REJECTED, '', 0, '', response.reason,
                        actor=request.key_id[:16])
            return response
        governor = self.governor
        from_version = governor.active.oracle_version if governor.active else ''
        try:
            with self._lock:
                release = governor.rollback(RollbackRequest(
                    request.key_id, request.nonce, request.expires_ns, request.to_number,
                    request.signature), self.now())
                self._publish_release(rollback=True)
        except ReleaseError:
            response.reason = governor.last_rejection
            self.get_logger().error(f'rollback refused: {response.reason}')
            self._event(GovernanceEvent.EVENT_REJECTED, '', request.to_number, from_version,
                        response.reason, governor.last_rejection_sha256,
                        governor.last_rejection_actor)
            self._publish_status()
            return response
        self._event(GovernanceEvent.EVENT_ROLLED_BACK, release.oracle_version, release.number,
                    from_version, f'signed by {request.key_id[:16]}', release.bundle_sha256,
                    request.key_id[:16])
        response.accepted, response.active_version = True, release.oracle_version
        return response

    def on_rollout(self, request, response):
        """A signed operator request to promote the rollout one stage, or abort it."""
        governor = self.governor
        if not self.active or governor is None:
            response.reason = 'governance is not active'
            self._event(GovernanceEvent.EVENT_REJECTED, '', request.number, '',
                        f'rollout {request.action}: {response.reason}',
                        actor=request.key_id[:16])
            return response
        try:
            with self._lock:
                action, events = governor.rollout_request(RolloutRequest(
                    request.key_id, request.action, request.nonce, request.expires_ns,
                    request.number, request.signature), self.now())
                self._after_rollout(events)
        except ReleaseError:
            response.reason = governor.last_rejection
            self.get_logger().error(f'rollout request refused: {response.reason}')
            self._event(GovernanceEvent.EVENT_REJECTED, '', request.number, '',
                        f'rollout {request.action}: {response.reason}',
                        governor.last_rejection_sha256, governor.last_rejection_actor)
            return response
        self._rollout_events(events, actor=request.key_id[:16])
        if not events:                  # with events, _after_rollout has published the state
            self._publish_status()
        response.accepted, response.rollout = True, self._rollout_text()
        return response

    def on_get_status(self, request, response):
        with self._lock:
            response.status = status_to_msg(self._signed(self._status(self.robots[0])))
        return response

    def on_oracle_running(self, robot: Robot, msg: OracleRunning) -> None:
        """Believed only when signed by an Oracle key of the trust root (authenticate)."""
        governor = self.governor
        if self.config.authenticate:
            if governor is None:
                return
            problem = Keyring.from_root(governor.root).check(
                ORACLE, msg.key_id, bytes(msg.signature), running_bytes(
                    msg.epoch, msg.seq, msg.active_version, msg.active_number,
                    msg.candidate_version, msg.candidate_number))
            if problem is not None:
                self.get_logger().warning(f'{robot.name}: report of what the Oracle runs '
                                          f'ignored: {problem}', throttle_duration_sec=5.0)
                return
        if (msg.active_version, msg.candidate_version) != (robot.running,
                                                           robot.running_candidate):
            self.get_logger().info(f'{robot.name}: the Oracle runs {msg.active_version}'
                                   + (f' with candidate {msg.candidate_version}'
                                      if msg.candidate_version else ''))
            robot.running, robot.running_candidate = msg.active_version, msg.candidate_version
            self._publish_status()

    def on_gate_record(self, robot: Robot, msg: GateDecision) -> None:
        """The Gate's records feed the rollout analysis (pairs of verdicts per proposal) and,
        with a safe answer of the verifier, the coverage overlay."""
        if (msg.subject == GateDecision.SUBJECT_VERIFICATION and len(msg.answer)
                and msg.answer[0].safe):
            self._on_verified(robot, msg.answer[0])
        feed = robot.feed
        if feed is None or self.governor is None:
            return
        observation = feed.observe(msg)
        if observation is not None:
            with self._lock:
                self.governor.observe(observation)

    def on_heartbeat(self) -> None:
        """Re-publish the status (a Gate believes only fresh ones), end overdue swaps, and move
        the rollout on from its analysis."""
        timeout_ns = int(self.config.swap_timeout * 1e9)
        for robot in self.robots:
            swap = robot.swap
            if swap is not None and swap.timed_out(robot.running, self.wall_ns(), timeout_ns):
                robot.swap = None
                why = (f'{robot.name}: the Oracle still runs {robot.running or "nothing"} '
                       f'{self.config.swap_timeout:.0f}s after release {swap.version} was sent: '
                       'only that release counts now (the robot stays stopped until it runs '
                       'it)')
                self.get_logger().error(why)
                self._event(GovernanceEvent.EVENT_SWAP_TIMEOUT, swap.version, 0, robot.running,
                            why)
        governor = self.governor
        events = ()
        if governor is not None and self.active and governor.rollout is not None:
            with self._lock:
                # a stage passes only once every robot that runs it has been heard
                events = governor.tick(self.now(), frozenset(
                    r.name for r in self.robots if self._stage_of(r) == governor.rollout.stage))
                self._after_rollout(events)
            self._rollout_events(events)
        if not events:     # otherwise the status went out just now, before the directive
            self._publish_status()

    def health(self):
        """For /diagnostics: what is active, what the Oracle runs, the rollout, what was
        refused."""
        with self._lock:
            status = self._status(self.robots[0])
        if self.governor is None:
            level, message = Level.ERROR, f'unconfigured: {self.problem or "not configured"}'
        elif not status.accepted_versions:
            level, message = Level.ERROR, (status.last_rejection
                                           or 'no release installed: nothing is accepted')
        elif status.oracle_running != status.active_version:
            level, message = Level.WARN, (f'the Oracle runs {status.oracle_running or "nothing"}'
                                          f', not {status.active_version}')
        elif not self.active:
            level, message = Level.WARN, 'inactive: submissions and rollbacks are refused'
        elif self.governor.rollout is not None and self.governor.rollout.paused:
            level, message = Level.WARN, f'rollout paused: {self.governor.rollout.why}'
        else:
            level, message = Level.OK, f'release {status.active_number} active'
        return level, message, (
            ('state', status.state), ('active', f'{status.active_version} '
                                                f'({status.active_number})'),
            ('previous', f'{status.previous_version} ({status.previous_number})'),
            ('oracle_running', status.oracle_running),
            ('accepted_versions', ','.join(status.accepted_versions)),
            ('rollout', status.rollout), ('installed_max', str(status.installed_max)),
            ('root_version', str(status.root_version)),
            ('last_rejection', status.last_rejection), ('events', str(self.event_seq)))

    # -- the rollout ----------------------------------------------------------------------------

    def _follow_rollout(self) -> None:
        """Point every robot's Gate-record feed at the candidate and its stage (per robot: in a
        fleet's canary only the first canary_robots run it enforced)."""
        governor = self.governor
        rollout = governor.rollout if governor else None
        for robot in self.robots:
            robot.feed = (RolloutFeed(governor.candidate.oracle_version, self._stage_of(robot),
                                      robot.name)
                          if rollout is not None and rollout.scores_candidate else None)

    def _stage_of(self, robot: Robot) -> RolloutStage:
        rollout = self.governor.rollout
        if rollout.stage == RolloutStage.CANARY and len(self.robots) > 1 and robot.ns not in \
                canary_members([r.ns for r in self.robots], rollout.plan.canary_robots):
            return RolloutStage.SHADOW
        return rollout.stage

    def _after_rollout(self, events) -> None:
        """A rollout event changes what runs and what counts: tell the Oracles and the Gates."""
        if events:
            self._follow_rollout()
            self._publish_release(rollback=False)

    def _rollout_events(self, events, actor: str = '') -> None:
        for event in events:
            metrics = ', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
                                for k, v in sorted(event.metrics.items()))
            reason = ' '.join(filter(None, [
                event.stage.name.lower() if event.stage else '', event.reason,
                f'({metrics})' if metrics else '']))
            self._event(_ROLLOUT_EVENTS[event.kind], event.version, event.number, '', reason,
                        actor=actor)

    def _rollout_text(self) -> str:
        governor = self.governor
        rollout = governor.rollout if governor else None
        if rollout is None:
            return ''
        elapsed = max(0, self.wall_ns() - rollout.started_ns) * 1e-9
        metrics = governor.analysis.metrics(elapsed) if governor.analysis else {}
        shown = ', '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}'
                          for k, v in sorted(metrics.items()))
        return (f'candidate {rollout.version} (release {rollout.number}) in '
                f'{rollout.stage.name.lower()} for {elapsed:.0f}s'
                + (f': {shown}' if shown else '')
                + (f'; PAUSED: {rollout.why}' if rollout.paused else ''))[:512]

    # -- the coverage overlay -------------------------------------------------------------------

    def _load_overlays(self, store_dir: Path) -> OverlayBook:
        """The overlay book of the store (ValueError if its file is corrupt: refusing to
        configure rather than numbering overlays again from 1)."""
        path = store_dir / OVERLAY_FILE
        config = self.config
        if not path.exists():
            return OverlayBook(config.overlay_coverage, config.max_verified_extent)
        try:
            return OverlayBook.from_json(path.read_bytes(), config.overlay_coverage,
                                         config.max_verified_extent)
        except ValueError as exc:
            raise ValueError(f'{path}: {exc} (move it away to start an empty overlay)') from exc

    def _on_verified(self, robot: Robot, answer_msg) -> None:
        """Count a safe answer toward the overlay (its signature checked here)."""
        governor, book = self.governor, self.overlays
        if governor is None or book is None or not self.active or governor.active is None:
            return
        answer = answer_from_msg(answer_msg)
        keyring = Keyring.from_root(governor.root) if self.config.authenticate else None
        with self._lock:
            active = governor.active
            done = book.admit(answer, robot.name, keyring, active.oracle_version, active.number,
                              active.spec)
            if done.overlay is None and done.why != 'already covered':
                self.get_logger().warning(f'{robot.name}: verified case not counted: {done.why}',
                                          throttle_duration_sec=5.0)
                return
            write_atomic(self.store_dir() / OVERLAY_FILE, book.to_json())
            if done.overlay is None:
                return
            o = done.overlay
            self._event(GovernanceEvent.EVENT_OVERLAY, o.oracle_version, o.release_number, '',
                        f'overlay {o.number} ({len(o.regions)} regions): {done.why} by the '
                        f'verifier for proposal {answer.proposal_digest[:16]} on '
                        f'{robot.name} (answer {answer.epoch}/{answer.seq})',
                        actor=answer.key_id[:16] or 'verifier')
            self._publish_overlay()
        self.get_logger().info(f'coverage overlay {o.number}: {done.why}')

    def _publish_overlay(self) -> None:
        """The overlay of the active release, signed, to every robot's Oracle (call under the
        lock)."""
        governor, book = self.governor, self.overlays
        active = governor.active if governor else None
        o = book.for_release(active.oracle_version, active.number) if active and book else None
        if o is None:
            return
        self.overlay_seq += 1
        msg = overlay_to_msg(self._signed(dataclasses.replace(o, epoch=self.epoch,
                                                              seq=self.overlay_seq)),
                             self.wall_ns())
        for robot in self.robots:
            robot.overlay_pub.publish(msg)

    # -- publishing -----------------------------------------------------------------------------

    def _status(self, robot: Robot) -> OracleStatus:
        governor = self.governor
        self.status_seq += 1
        state = 'unconfigured' if governor is None else 'active' if self.active else 'inactive'
        active = governor.active if governor else None
        previous = governor.previous if governor else None
        accepted: tuple[str, ...] = ()
        problem = governor.last_rejection if governor else self.problem
        if active is not None and governor.active_expired(self.now()):
            problem = (f'the active release {active.number} expired {active.expires.isoformat()}:'
                       ' nothing is accepted (the robot stays stopped) until a newer one is '
                       'installed')
        elif active is not None:
            swap = robot.swap
            accepted = (swap.accepted(robot.running, self.wall_ns(),
                                      int(self.config.swap_timeout * 1e9))
                        if swap is not None and swap.version == active.oracle_version
                        else (active.oracle_version,))
        rollout = governor.rollout if governor else None
        candidate = governor.candidate if rollout is not None and rollout.scores_candidate \
            else None
        stage = _STATUS_STAGES.get(self._stage_of(robot), 0) if candidate else 0
        return OracleStatus(
            epoch=self.epoch, seq=self.status_seq, stamp_ns=self.wall_ns(), state=state,
            active_version=active.oracle_version if active else '',
            active_number=active.number if active else 0,
            previous_version=previous.oracle_version if previous else '',
            previous_number=previous.number if previous else 0,
            oracle_running=robot.running, accepted_versions=accepted,
            root_version=governor.root.signed.version if governor else 0,
            root=governor.root_bytes() if governor else b'',
            installed_max=governor.store.state().installed_max if governor else 0,
            last_rejection=problem[:1024],
            candidate_version=candidate.oracle_version if candidate else '',
            candidate_number=candidate.number if candidate else 0, stage=stage,
            rollout=self._rollout_text())

    def _publish_status(self) -> None:
        with self._lock:
            for robot in self.robots:
                robot.status_pub.publish(status_to_msg(self._signed(self._status(robot))))

    def _signed(self, message):
        """Status and directives carry governance's signature (Gates and Oracles check it)."""
        if self.key is None:
            return message
        return dataclasses.replace(message, key_id=self.key.key_id,
                                   signature=self.key.sign(message.canonical_bytes()))

    def _publish_release(self, rollback: bool) -> None:
        """The whole desired state, to every robot's Gate first and then to its Oracle (call
        under the lock): the status saying which versions now count, then the directive naming
        the active release and the candidate to score beside it, if any.

        In that order because the Gate must count a new version before the Oracle can score with
        it: a verdict that reaches the Gate first waits for the status at most
        ``verdict_timeout``, then blocks its proposal. Published the other way round, with
        governance's events and log between them, a stress run saw the status reach the Gate
        0.2 s after the Oracle had swapped, and a proposal was blocked for a release that had
        been installed."""
        governor = self.governor
        active = governor.active
        if active is None:
            self._publish_status()
            return
        rollout = governor.rollout
        candidate = governor.candidate if rollout is not None and rollout.scores_candidate \
            else None
        self.directive_seq += 1
        directive = self._signed(Directive(
            self.epoch, self.directive_seq, active.number, active.oracle_version, rollback,
            governor.bundle_bytes(active.number), governor.root_bytes(active.root_version),
            candidate.oracle_version if candidate else '', candidate.number if candidate else 0,
            governor.bundle_bytes(candidate.number) if candidate else b'',
            governor.root_bytes(candidate.root_version) if candidate else b''))
        msg = OracleRelease(epoch=directive.epoch, seq=directive.seq,
                            oracle_version=directive.oracle_version, number=directive.number,
                            rollback=directive.rollback,
                            candidate_version=directive.candidate_version,
                            candidate_number=directive.candidate_number,
                            key_id=directive.key_id, signature=list(directive.signature))
        msg.bundle = array('B', directive.bundle)
        msg.root = array('B', directive.root)
        msg.candidate_bundle = array('B', directive.candidate_bundle)
        msg.candidate_root = array('B', directive.candidate_root)
        for robot in self.robots:
            if robot.swap is None or robot.swap.version != active.oracle_version:
                robot.swap = Swap(active.oracle_version, self.wall_ns())
            robot.status_pub.publish(status_to_msg(self._signed(self._status(robot))))
            msg.header.stamp = to_time(self.wall_ns())
            robot.release_pub.publish(msg)

    def _transition(self, transition: str, start: str, goal: str, detail: str = '') -> None:
        self._event(GovernanceEvent.EVENT_TRANSITION, '', 0, '',
                    f'{transition}: {start} -> {goal}' + (f' ({detail})' if detail else ''))

    def _event(self, event: int, version: str, number: int, previous: str, reason: str,
               sha256: str = '', actor: str = '') -> None:
        with self._lock:
            self.event_seq += 1
            msg = GovernanceEvent(epoch=self.epoch, seq=self.event_seq, event=event,
                                  oracle_version=version, number=number,
                                  previous_version=previous, bundle_sha256=sha256,
                                  reason=reason[:1024], actor=(actor or self.get_name())[:128])
            msg.header.stamp = to_time(self.wall_ns())
            self.events_pub.publish(msg)


def build() -> GovernanceNode:
    """Without any trust root governance cannot work at all: refuse to start (exit 2). Any other
    failure to configure leaves it running, unconfigured, saying why on its status, with nothing
    accepted: an operator can see it and fix it, and the robot stays stopped meanwhile."""
    node = GovernanceNode()
    if not node.has_trust_root():
        raise ReleaseError(f'no trust root: {node.bootstrap_root_path()} does not exist and the '
                           f'store {node.store_dir()} has none (give trust_root_path, or run '
                           '`flywheel keys init`)')
    if node.config.autostart and node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
        node.trigger_activate()
    return node


def main(argv=None) -> int:
    return run_node('governance', build, argv)


if __name__ == '__main__':
    raise SystemExit(main())
