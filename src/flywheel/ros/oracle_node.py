"""oracle_node: proposals in, SafetySignals out, scored with the active Oracle release.

With a trust root, it follows governance: every OracleRelease is verified again here (signatures,
expiry, pinned hashes, schema; a carried root only after a valid rotation) in a worker thread, the
new Oracle is built there, and the executor thread swaps the reference between two evaluations, so
each evaluation runs entirely under one release and the proposal stream barely pauses.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from rclpy.node import Node
from std_msgs.msg import String

from alignment_flywheel.msg import OracleRelease
from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.errors import ReleaseError
from flywheel.oracle.config import OracleConfig
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import load_spec
from flywheel.proposal import ProposalLimits
from flywheel.release.bundle import verify_bundle
from flywheel.release.root import check_self_signed, load_root, verify_rotation
from flywheel.ros import qos, topics
from flywheel.ros.convert import proposal_from_msg, signals_to_msg
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.run import run_node


class OracleNode(Node):
    def __init__(self, **kwargs):
        super().__init__('oracle', **kwargs)
        self.config = declare_config(self, OracleConfig)
        spec = load_spec(config_path(self.config.spec_path))
        self.oracle = self._build(spec)
        self.publisher = self.create_publisher(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM)
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM)
        self.root = None
        if self.config.trust_root_path:
            self.root = load_root(config_path(self.config.trust_root_path).read_bytes())
            check_self_signed(self.root, self._now())
            self._ready = None
            self._lock = threading.Lock()
            self.active_pub = self.create_publisher(String, topics.ORACLE_ACTIVE, qos.STATUS)
            self.create_subscription(OracleRelease, topics.ORACLE_RELEASE, self.on_release,
                                     qos.STATUS)
            self.create_timer(0.05, self._swap_if_ready)
            self.active_pub.publish(String(data=spec.version))
        self.get_logger().info(f'oracle {spec.version} ready: {len(spec.obstacles)} obstacles, '
                               f'{len(spec.keep_out)} keep-out, '
                               f'{len(spec.speed_zones)} speed zones'
                               + (', following governance releases' if self.root else ''))

    def _build(self, spec) -> Oracle:
        return Oracle(spec, ProposalLimits(spec.frame_id, self.config.max_points,
                                           self.config.allowed_proposers))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.get_clock().now().nanoseconds / 1e9, tz=timezone.utc)

    def on_release(self, msg: OracleRelease) -> None:
        worker = threading.Thread(target=self._prepare, daemon=True, name='release-verify',
                                  args=(bytes(msg.bundle), bytes(msg.root), msg.oracle_version))
        worker.start()

    def _prepare(self, bundle: bytes, root_bytes: bytes, announced: str) -> None:
        """Verify (defence in depth) and build the new Oracle, off the executor thread."""
        try:
            root = self.root
            if root_bytes:
                carried = load_root(root_bytes)
                if carried.signed.version > root.signed.version:
                    verify_rotation(root, carried, self._now())
                    root = carried
            release = verify_bundle(bundle, root, self._now(), installed_number=0,
                                    allow_same=True)
            oracle = self._build(release.spec)
        except ReleaseError as exc:
            self.get_logger().error(f'release {announced} refused by the Oracle: {exc}; '
                                    f'keeping {self.oracle.spec.version}')
            return
        with self._lock:
            self._ready = (oracle, root)

    def _swap_if_ready(self) -> None:
        if self.root is None or self._ready is None:
            return
        with self._lock:
            (oracle, root), self._ready = self._ready, None
        old, self.oracle, self.root = self.oracle.spec.version, oracle, root
        self.active_pub.publish(String(data=oracle.spec.version))
        self.get_logger().info(f'swapped Oracle {old} -> {oracle.spec.version}')

    def on_proposal(self, msg: ProposalMsg) -> None:
        self._swap_if_ready()
        started = time.perf_counter_ns()
        try:
            proposal = proposal_from_msg(msg)
        except Exception as exc:  # noqa: BLE001 - unscorable: no verdict, the Gate times it out
            self.get_logger().error(f'cannot read proposal {msg.proposal_id!r}: {exc!r}')
            return
        oracle = self.oracle  # one release per evaluation, even if a swap lands meanwhile
        try:
            signals = oracle.evaluate(proposal)
        except Exception as exc:  # noqa: BLE001 - a scoring bug must stop the robot, not the node
            self.get_logger().error(f'scoring {msg.proposal_id} failed: {exc!r}')
            signals = oracle.rejected(proposal, ['internal:scoring_error'])
        self.publisher.publish(signals_to_msg(
            signals, self.get_clock().now().nanoseconds, msg.header.frame_id,
            time.perf_counter_ns() - started))


def main(argv=None) -> int:
    return run_node('oracle', OracleNode, argv)


if __name__ == '__main__':
    raise SystemExit(main())
