"""governance_node: a lifecycle node that owns the trust root and the release store, verifies and
installs signed Oracle releases, answers rollbacks, and tells the Oracle what to run and the Gate
which versions count. While not active it accepts nothing (and records each refusal).

Everything it does or refuses is a GovernanceEvent on a sequence-numbered, transient-local stream,
its lifecycle transitions included, so the audit records it even if it starts later. Security
checks (expiry of releases, roots and rollback requests) use the wall clock, never ROS time: under
sim time nothing would ever expire.

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

from alignment_flywheel.msg import GovernanceEvent, OracleRelease
from alignment_flywheel.msg import OracleRunning
from alignment_flywheel.msg import OracleStatus as OracleStatusMsg
from alignment_flywheel.srv import GetStatus, Rollback, SubmitRelease
from flywheel.auth import ORACLE, Keyring, load_message_key
from flywheel.errors import FlywheelError, ReleaseError
from flywheel.oracle.directive import Directive, running_bytes
from flywheel.oracle_status import OracleStatus
from flywheel.provision import NODE_KEYS, ROOT, key_path
from flywheel.release.config import GovernanceConfig
from flywheel.release.governor import Governor, NoticeKind, RollbackRequest
from flywheel.release.store import ReleaseStore
from flywheel.release.swap import Swap
from flywheel.health import Level
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.convert import status_to_msg, to_time
from flywheel.ros.params import declare_config
from flywheel.ros.run import run_node

HEARTBEAT_S = 1.0
_NOTICE_EVENTS = {NoticeKind.ROOT_INSTALLED: GovernanceEvent.EVENT_ROOT_INSTALLED,
                  NoticeKind.ACTIVE_EXPIRED: GovernanceEvent.EVENT_REJECTED,
                  NoticeKind.PREVIOUS_DROPPED: GovernanceEvent.EVENT_DROPPED}


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
        self.running = ''             # the version the Oracle node reports it runs
        self.running_candidate = ''
        self.swap: Swap | None = None
        self.epoch = time.time_ns()
        self.event_seq = self.status_seq = self.directive_seq = 0
        self._lock = threading.RLock()          # every change of governor state, and publishing
        submissions = MutuallyExclusiveCallbackGroup()
        control = MutuallyExclusiveCallbackGroup()
        self.events_pub = self.create_publisher(GovernanceEvent, topics.GOVERNANCE_EVENTS,
                                                qos.RECORDS)
        self.status_pub = self.create_publisher(OracleStatusMsg, topics.ORACLE_STATUS,
                                                qos.STATUS)
        self.release_pub = self.create_publisher(OracleRelease, topics.ORACLE_RELEASE,
                                                 qos.STATUS)
        self.create_service(SubmitRelease, topics.SUBMIT_RELEASE, self.on_submit,
                            callback_group=submissions)
        self.create_service(Rollback, topics.ROLLBACK, self.on_rollback, callback_group=control)
        self.create_service(GetStatus, topics.GET_STATUS, self.on_get_status,
                            callback_group=control)
        self.create_subscription(OracleRunning, topics.ORACLE_RUNNING, self.on_oracle_running,
                                 qos.STATUS, callback_group=control)
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
            governor = Governor(ReleaseStore(store_dir), self.config.max_bundle_bytes)
            notices = governor.load(self.now(), bootstrap)
        except (OSError, FlywheelError) as exc:
            self.problem = f'cannot configure: {exc}'
            self.get_logger().error(f'{self.problem}; nothing is accepted (the robot stays '
                                    'stopped) until a configure succeeds')
            self._transition('configure', 'unconfigured', 'unconfigured', f'failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.governor, self.problem = governor, ''
        for notice in notices:
            event = _NOTICE_EVENTS[notice.kind]
            (self.get_logger().warning if event != GovernanceEvent.EVENT_ROOT_INSTALLED
             else self.get_logger().info)(notice.reason)
            self._event(event, notice.oracle_version, notice.number, '', notice.reason,
                        notice.bundle_sha256)
        active = governor.active
        self.get_logger().info(f'configured: store {store_dir}, root v'
                               f'{governor.root.signed.version}, active release '
                               f'{active.oracle_version if active else "none"}')
        self._transition('configure', 'unconfigured', 'inactive')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self.active = True
        self._transition('activate', 'inactive', 'active')
        if self.governor.active is not None:
            self._publish_release(rollback=False)
        self._publish_status()
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
            submission = governor.verify(bundle, self.now())
            with self._lock:
                previous = governor.active
                release = governor.install(bundle, submission)
                self._publish_release(rollback=False)
        except ReleaseError:
            response.reason = governor.last_rejection
            self.get_logger().error(f'release refused: {response.reason}')
            self._event(GovernanceEvent.EVENT_REJECTED, '', 0, '', response.reason,
                        governor.last_rejection_sha256, governor.last_rejection_actor)
            self._publish_status()
            return response
        old = previous.oracle_version if previous else ''
        for event, what in ((GovernanceEvent.EVENT_VERIFIED, 'verified'),
                            (GovernanceEvent.EVENT_INSTALLED, 'installed')):
            self._event(event, release.oracle_version, release.number, old, what,
                        release.bundle_sha256, ','.join(k[:16] for k in release.signed_by))
        self.get_logger().info(f'release {release.number} (Oracle {release.oracle_version}) '
                               f'installed; swapping')
        self._publish_status()
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
        self._publish_status()
        response.accepted, response.active_version = True, release.oracle_version
        return response

    def on_get_status(self, request, response):
        with self._lock:
            response.status = status_to_msg(self._signed(self._status()))
        return response

    def on_oracle_running(self, msg: OracleRunning) -> None:
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
                self.get_logger().warning(f'report of what the Oracle runs ignored: {problem}',
                                          throttle_duration_sec=5.0)
                return
        if (msg.active_version, msg.candidate_version) != (self.running,
                                                           self.running_candidate):
            self.get_logger().info(f'the Oracle runs {msg.active_version}'
                                   + (f' with candidate {msg.candidate_version}'
                                      if msg.candidate_version else ''))
            self.running, self.running_candidate = msg.active_version, msg.candidate_version
            self._publish_status()

    def on_heartbeat(self) -> None:
        """Re-publish the status (a Gate believes only fresh ones) and end overdue swaps."""
        swap = self.swap
        timeout_ns = int(self.config.swap_timeout * 1e9)
        if swap is not None and swap.timed_out(self.running, self.wall_ns(), timeout_ns):
            self.swap = None
            why = (f'the Oracle still runs {self.running or "nothing"} '
                   f'{self.config.swap_timeout:.0f}s after release {swap.version} was sent: '
                   'only that release counts now (the robot stays stopped until it runs it)')
            self.get_logger().error(why)
            self._event(GovernanceEvent.EVENT_SWAP_TIMEOUT, swap.version, 0, self.running, why)
        self._publish_status()

    def health(self):
        """For /diagnostics: what is active, what the Oracle runs, what was refused."""
        with self._lock:
            status = self._status()
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
        else:
            level, message = Level.OK, f'release {status.active_number} active'
        return level, message, (
            ('state', status.state), ('active', f'{status.active_version} '
                                                f'({status.active_number})'),
            ('previous', f'{status.previous_version} ({status.previous_number})'),
            ('oracle_running', status.oracle_running),
            ('accepted_versions', ','.join(status.accepted_versions)),
            ('installed_max', str(status.installed_max)),
            ('root_version', str(status.root_version)),
            ('last_rejection', status.last_rejection), ('events', str(self.event_seq)))

    # -- publishing -----------------------------------------------------------------------------

    def _status(self) -> OracleStatus:
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
            swap = self.swap
            accepted = (swap.accepted(self.running, self.wall_ns(),
                                      int(self.config.swap_timeout * 1e9))
                        if swap is not None and swap.version == active.oracle_version
                        else (active.oracle_version,))
        root = governor.root_bytes() if governor else b''
        return OracleStatus(
            epoch=self.epoch, seq=self.status_seq, stamp_ns=self.wall_ns(), state=state,
            active_version=active.oracle_version if active else '',
            active_number=active.number if active else 0,
            previous_version=previous.oracle_version if previous else '',
            previous_number=previous.number if previous else 0,
            oracle_running=self.running, accepted_versions=accepted,
            root_version=governor.root.signed.version if governor else 0, root=root or b'',
            installed_max=governor.store.state().installed_max if governor else 0,
            last_rejection=problem[:1024])

    def _publish_status(self) -> None:
        with self._lock:
            self.status_pub.publish(status_to_msg(self._signed(self._status())))

    def _signed(self, message):
        """Status and directives carry governance's signature (Gates and Oracles check it)."""
        if self.key is None:
            return message
        return dataclasses.replace(message, key_id=self.key.key_id,
                                   signature=self.key.sign(message.canonical_bytes()))

    def _publish_release(self, rollback: bool) -> None:
        active = self.governor.active
        self.swap = Swap(active.oracle_version, self.wall_ns())
        self.directive_seq += 1
        directive = self._signed(Directive(
            self.epoch, self.directive_seq, active.number, active.oracle_version, rollback,
            self.governor.bundle_bytes(active.number),
            self.governor.root_bytes(active.root_version)))
        msg = OracleRelease(epoch=directive.epoch, seq=directive.seq,
                            oracle_version=directive.oracle_version, number=directive.number,
                            rollback=directive.rollback,
                            candidate_version=directive.candidate_version,
                            candidate_number=directive.candidate_number,
                            key_id=directive.key_id, signature=list(directive.signature))
        msg.header.stamp = to_time(self.wall_ns())
        msg.bundle = array('B', directive.bundle)
        msg.root = array('B', directive.root)
        msg.candidate_bundle = array('B', directive.candidate_bundle)
        msg.candidate_root = array('B', directive.candidate_root)
        self.release_pub.publish(msg)

    def _transition(self, transition: str, start: str, goal: str, detail: str = '') -> None:
        self._event(GovernanceEvent.EVENT_TRANSITION, '', 0, '',
                    f'{transition}: {start} -> {goal}' + (f' ({detail})' if detail else ''))

    def _event(self, event: int, version: str, number: int, previous: str, reason: str,
               sha256: str = '', actor: str = '') -> None:
        with self._lock:
            self._publish_event(event, version, number, previous, reason, sha256, actor)

    def _publish_event(self, event, version, number, previous, reason, sha256, actor) -> None:
        self.event_seq += 1
        msg = GovernanceEvent(epoch=self.epoch, seq=self.event_seq, event=event,
                              oracle_version=version, number=number, previous_version=previous,
                              bundle_sha256=sha256, reason=reason[:1024],
                              actor=(actor or self.get_name())[:128])
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
