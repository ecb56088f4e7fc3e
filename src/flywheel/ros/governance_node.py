"""governance_node: a lifecycle node that owns the trust root and the release store, verifies and
installs signed Oracle releases, answers rollbacks, and tells the Oracle what to run and the Gate
which versions count. While not active it accepts nothing."""
from __future__ import annotations

import os
from array import array
from datetime import datetime, timezone
from pathlib import Path

from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from std_msgs.msg import String

from alignment_flywheel.msg import OracleRelease, OracleStatus, GovernanceEvent
from alignment_flywheel.srv import GetStatus, Rollback, SubmitRelease
from flywheel.errors import FlywheelError, ReleaseError
from flywheel.release.config import GovernanceConfig
from flywheel.release.governor import Governor, RollbackRequest
from flywheel.release.store import ReleaseStore
from flywheel.ros import qos, topics
from flywheel.ros.convert import to_time
from flywheel.ros.params import declare_config
from flywheel.ros.run import run_node


class GovernanceNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__('governance', **kwargs)
        self.config = declare_config(self, GovernanceConfig)
        self.governor: Governor | None = None
        self.active = False
        self.running = ''             # the version the Oracle node reports it runs
        self.status_pub = self.release_pub = self.events_pub = None
        self.create_service(SubmitRelease, topics.SUBMIT_RELEASE, self.on_submit)
        self.create_service(Rollback, topics.ROLLBACK, self.on_rollback)
        self.create_service(GetStatus, topics.GET_STATUS, self.on_get_status)
        self.create_subscription(String, topics.ORACLE_ACTIVE, self.on_oracle_active, qos.STATUS)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.get_clock().now().nanoseconds / 1e9, tz=timezone.utc)

    # -- lifecycle ------------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        ros_home = Path(os.environ.get('ROS_HOME', Path.home() / '.ros'))
        store_dir = (Path(self.config.store_dir).expanduser() if self.config.store_dir
                     else ros_home / 'alignment_flywheel' / 'releases')
        try:
            bootstrap = (Path(self.config.trust_root_path).expanduser().read_bytes()
                         if self.config.trust_root_path else None)
            governor = Governor(ReleaseStore(store_dir), self.config.max_bundle_bytes)
            governor.load(self.now(), bootstrap)
        except (OSError, FlywheelError) as exc:
            self.get_logger().error(f'cannot configure: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.governor = governor
        self.status_pub = self.create_lifecycle_publisher(OracleStatus, topics.ORACLE_STATUS,
                                                          qos.STATUS)
        self.release_pub = self.create_lifecycle_publisher(OracleRelease, topics.ORACLE_RELEASE,
                                                           qos.STATUS)
        self.events_pub = self.create_lifecycle_publisher(GovernanceEvent, topics.GOVERNANCE_EVENTS,
                                                          qos.STREAM)
        active = governor.active
        self.get_logger().info(f'configured: store {store_dir}, root v'
                               f'{governor.root.signed.version}, active release '
                               f'{active.oracle_version if active else "none"}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self.active = True
        if self.governor.active is not None:
            self._publish_release()
        self._publish_status()
        return result

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for pub in (self.status_pub, self.release_pub, self.events_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self.status_pub = self.release_pub = self.events_pub = None
        self.governor = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        return TransitionCallbackReturn.SUCCESS

    # -- services -------------------------------------------------------------------------------

    def on_submit(self, request, response):
        if not self.active:
            response.reason = 'governance is not active'
            return response
        try:
            bundle = self._read_bundle(request)
        except (OSError, ReleaseError) as exc:
            response.reason = f'cannot read {request.bundle_path}: {exc}'
            return response
        self._event(GovernanceEvent.EVENT_SUBMITTED, '', '', 'submitted')
        previous = self.governor.active
        try:
            release = self.governor.submit(bundle, self.now())
        except ReleaseError:
            response.reason = self.governor.last_rejection
            self.get_logger().error(f'release refused: {response.reason}')
            self._event(GovernanceEvent.EVENT_REJECTED, '', '', response.reason)
            self._publish_status()
            return response
        old = previous.oracle_version if previous else ''
        self._event(GovernanceEvent.EVENT_VERIFIED, release.oracle_version, old, 'verified',
                    release.bundle_sha256)
        self._event(GovernanceEvent.EVENT_INSTALLED, release.oracle_version, old, 'installed',
                    release.bundle_sha256)
        self.get_logger().info(f'release {release.number} (Oracle {release.oracle_version}) '
                               f'installed; swapping')
        self._publish_release()
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
            return response
        from_version = self.governor.active.oracle_version if self.governor.active else ''
        try:
            release = self.governor.rollback(RollbackRequest(
                request.key_id, request.nonce, request.expires_ns, request.to_number,
                request.signature), self.now())
        except ReleaseError:
            response.reason = self.governor.last_rejection
            self.get_logger().error(f'rollback refused: {response.reason}')
            self._event(GovernanceEvent.EVENT_REJECTED, '', from_version, response.reason)
            self._publish_status()
            return response
        self._event(GovernanceEvent.EVENT_ROLLED_BACK, release.oracle_version, from_version,
                    f'signed by {request.key_id[:16]}', release.bundle_sha256)
        self._publish_release()
        self._publish_status()
        response.accepted, response.active_version = True, release.oracle_version
        return response

    def on_get_status(self, request, response):
        response.status = self._status()
        return response

    def on_oracle_active(self, msg: String) -> None:
        if msg.data != self.running:
            self.get_logger().info(f'the Oracle runs {msg.data}')
            self.running = msg.data
            self._publish_status()

    # -- publishing -----------------------------------------------------------------------------

    def _status(self) -> OracleStatus:
        status = OracleStatus()
        status.header.stamp = self.get_clock().now().to_msg()
        status.state = 'active' if self.active else 'inactive'
        governor = self.governor
        if governor is None:
            status.state = 'unconfigured'
            return status
        active, previous = governor.active, governor.previous
        if active:
            status.active_version, status.active_number = active.oracle_version, active.number
            status.accepted_versions = [active.oracle_version]
        if previous:
            status.previous_version = previous.oracle_version
            status.previous_number = previous.number
            # until the Oracle confirms the swap, the version it still runs keeps counting
            if self.running and self.running != active.oracle_version:
                status.accepted_versions.append(self.running)
        status.root_version = governor.root.signed.version
        status.last_rejection = governor.last_rejection
        return status

    def _publish_status(self) -> None:
        if self.status_pub is not None:
            self.status_pub.publish(self._status())

    def _publish_release(self) -> None:
        active = self.governor.active
        msg = OracleRelease(oracle_version=active.oracle_version, number=active.number)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.bundle = array('B', self.governor.store.bundle(active.number))
        msg.root = array('B', self.governor.store.root_bytes())
        self.release_pub.publish(msg)

    def _event(self, event: int, version: str, previous: str, reason: str,
               sha256: str = '') -> None:
        msg = GovernanceEvent(event=event, oracle_version=version, previous_version=previous,
                           bundle_sha256=sha256, reason=reason, actor=self.get_name())
        msg.header.stamp = to_time(self.get_clock().now().nanoseconds)
        self.events_pub.publish(msg)


def build() -> GovernanceNode:
    node = GovernanceNode()
    if node.config.autostart:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise ReleaseError('governance failed to configure (see the error above)')
        node.trigger_activate()
    return node


def main(argv=None) -> int:
    return run_node('governance', build, argv)


if __name__ == '__main__':
    raise SystemExit(main())
