"""gate_node: republishes only approved commands on cmd_vel, and stop when none is in force.

cmd_vel is published by the Gate's output process (flywheel/ros/output_process.py), which keeps
each approval's steady-clock deadline on its own: nothing in this process (a flood, GC, a blocked
publisher, SIGSTOP, kill -9) can keep a command on cmd_vel past it. Proposals and verdicts are
read from their serialized bytes with every bound checked first: no input can keep the executor
busy.

An ESCALATE holds the robot and asks the verifier node (its ~/verify service, in this namespace)
about that proposal, sending the bytes the Gate received; the call is asynchronous and nothing
waits for it: the answer is handed to the Gate core when it comes (flywheel/enforcement/gate.py
decides what it is worth), and one that does not come in verify_timeout is dropped there.

A lifecycle node (ros2 lifecycle works on it): the output process runs from construction, so an
unconfigured or inactive Gate publishes stop and never passes a command; activation waits until the
output process publishes, and deactivation withdraws the approval before anything else. A proposal
that arrives while it is not active is decided BLOCK (INACTIVE): it still gets its one decision.
"""
from __future__ import annotations

import time
from array import array
from datetime import datetime, timezone

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry as OdometryMsg
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from alignment_flywheel.msg import GateDecision, OracleStatus as OracleStatusMsg
from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from alignment_flywheel.srv import Verify
from flywheel.enforcement.config import GateConfig
from flywheel.enforcement.decision import Action, Decision, Finding, Reason
from flywheel.enforcement.gate import Gate, Now
from flywheel.enforcement.policy import load_policy
from flywheel.errors import FlywheelError
from flywheel.files import read_file
from flywheel.health import Health, LatencyWindow, Level, RateCounter, counts_text
from flywheel.provision import ROOT, key_path
from flywheel.release.root import check_self_signed, load_root
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.answer_msgs import answer_from_msg
from flywheel.ros.command_output import STARTUP_S as OUTPUT_STARTUP_S, CommandOutput
from flywheel.ros.convert import (decision_to_msg, odometry_from_bytes, status_from_msg,
                                  to_time)
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.run import autostart, run_node
from flywheel.signals_wire import decode_signals
from flywheel.wire import WireError, decode_proposal

# A SafetySignals within every bound of its message is a few tens of KB at most.
MAX_SIGNALS_BYTES = 32 * 1024
AUTH_OFF = ('AUTHENTICATION OFF (authenticate: false): any participant on this DDS domain can '
            'forge verdicts; only for tests and the demo\'s bypass run')
# Governance re-publishes its status every second. A Gate that hears none for this long has lost
# it: under `make stress` one Gate in a few hundred started never heard governance's status in
# 30 s, while it heard every other peer. It says so (with how many publishers its reader has
# matched) and subscribes again, so that a new reader is announced and matched afresh: that mends
# a miss of this one reader; two participants that never met stay apart (and the robot stopped).
STATUS_SILENCE_S = 5.0


class GateNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__('gate', **kwargs)
        self.config = config = declare_config(self, GateConfig)
        self.gate: Gate | None = None
        self.active = False
        self.epoch, self.seq = time.time_ns(), 0
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._stopped = True
        if config.stamped:
            self.cmd_pub = self.create_publisher(TwistStamped, topics.CMD_VEL, qos.COMMAND)
        else:
            self.cmd_pub = self.create_publisher(Twist, topics.CMD_VEL, qos.COMMAND)
        self.output = CommandOutput(self._output_argv(), self._publish_stop,
                                    min(config.command_timeout, max(5 * config.tick_period, 0.1)),
                                    self.get_logger().error, config.output_priority).start()
        self.decision_pub = self.create_publisher(GateDecision, topics.GATE_DECISIONS,
                                                  qos.RECORDS)
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.INPUT,
                                 raw=True)
        self.create_subscription(SignalsMsg, topics.SAFETY_SIGNALS, self.on_signals, qos.INPUT,
                                 raw=True)
        self.create_subscription(OdometryMsg, topics.ODOM, self.on_odometry, qos.SENSOR,
                                 raw=True)
        self.status_sub = self._subscribe_status() if config.follow_governance else None
        self._status_heard_ns = self._resubscribed_ns = time.monotonic_ns()
        self.resubscribed = 0
        self.create_timer(config.tick_period, self.on_tick, clock=self._steady)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, diagnostics.TOPIC, 10)
        self.create_timer(1.0, self.on_diagnostics, clock=self._steady)
        self._rate = RateCounter()
        self._latency = LatencyWindow()
        self._last_rejection = ''
        self._output_problem = ''
        self._counted: dict = {}
        # ESCALATE asks the verifier: one request per escalated digest, answered asynchronously
        # (nothing waits for it; the Gate core ends what is not answered in verify_timeout).
        self.verify_client = self.create_client(Verify, topics.VERIFIER_VERIFY)
        self._asking: dict = {}               # digest -> the request's future

    # -- lifecycle ------------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        config = self.config
        try:
            policy = load_policy(config_path(config.policy_path))
            root = None
            if config.authenticate:
                root = load_root(read_file(key_path(config.trust_root_path, ROOT), 'trust root'))
                check_self_signed(root, datetime.now(timezone.utc))
            else:
                self.get_logger().warning(AUTH_OFF)
        except FlywheelError as exc:
            self.problem = str(exc)
            self.get_logger().error(f'cannot configure: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.gate = Gate(policy, config, root)
        self._counted = self.gate.counts.copy()
        self.get_logger().info(
            f'gate configured: policy {policy.version}, oracle versions '
            + ('from governance' if config.follow_governance
               else str(sorted(self.gate.accepted_versions)))
            + (f', authenticated against trust root v{root.signed.version}' if root is not None
               else ', AUTHENTICATION OFF')
            + f', command_timeout {config.command_timeout}s (honoured {config.honoured:.3f}s, '
            f'the rest for delivery), hold {config.hold:.3f}s, '
            f'cmd_vel as {"TwistStamped" if config.stamped else "Twist"}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        deadline = time.monotonic() + OUTPUT_STARTUP_S
        while not self.output.alive and time.monotonic() < deadline:
            self.output.check(time.monotonic_ns())
            time.sleep(self.config.tick_period)
        if not self.output.alive:
            self.get_logger().error(f'cannot activate: the output process (pid '
                                    f'{self.output.pid}) has not published cmd_vel')
            return TransitionCallbackReturn.FAILURE
        self.active = True
        self._status_heard_ns = max(self._status_heard_ns, time.monotonic_ns())
        self.get_logger().info('gate active')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_now()
        self.get_logger().info('gate inactive: stop published, nothing passes')
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._stop_now()
        self.gate = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop_now()
        return TransitionCallbackReturn.SUCCESS

    def _stop_now(self) -> None:
        self.active = False
        if self.gate is not None:
            self.gate.withdraw()
        self.output.hand_off(None)

    def _approval(self):
        gate = self.gate
        return (gate.approval if gate is not None and self.active and self.output.alive
                else None)

    def _output_argv(self) -> list[str]:
        """The output process publishes on this node's resolved cmd_vel, in its namespace and
        domain, on its clock (sim time too)."""
        config = self.config
        return (['--topic', self.cmd_pub.topic_name, '--tick', str(config.tick_period),
                 '--priority', str(config.output_priority),
                 '--domain', str(self.context.get_domain_id())]
                + (['--stamped'] if config.stamped else [])
                + ['--ros-args', '-r', f'__node:={self.get_name()}_output',
                   '-r', f'__ns:={self.get_namespace()}',
                   '-p', f'use_sim_time:={str(self.get_parameter("use_sim_time").value).lower()}'])

    def ros_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def now(self) -> Now:
        # Steady first: a deadline (steady + hold) then never ends later than the decision's
        # stamp (ROS time) + hold, however long this thread is preempted between the two reads.
        steady = time.monotonic_ns()
        return Now(self.ros_ns(), steady, time.time_ns())

    # -- inputs ---------------------------------------------------------------------------------

    def on_proposal(self, raw: bytes) -> None:
        now = self.now()
        if not self.active or not self.output.alive:
            self._publish_inactive(raw, now)
            return
        try:
            proposal = decode_proposal(raw, self.config.max_points)
        except WireError as exc:
            reason = Reason.OVERSIZE if exc.oversize else Reason.MALFORMED
            self._publish([self.gate.on_refused_input(exc.proposal_id, exc.proposer_id, reason,
                                                      str(exc), now)])
            return
        try:
            decisions = self.gate.on_proposal(proposal, now, raw)
        except Exception as exc:  # noqa: BLE001 - fail closed, never silent
            decisions = [self._internal_error(proposal.proposal_id, proposal.proposer_id, exc)]
        self._publish(decisions)

    def on_signals(self, raw: bytes) -> None:
        if not self.active:           # its proposal was decided INACTIVE; nothing to approve
            return
        now = self.now()
        if len(raw) > MAX_SIGNALS_BYTES:
            self._publish([self.gate.on_refused_verdict(
                '', Reason.OVERSIZE, f'{len(raw)} bytes > {MAX_SIGNALS_BYTES}', now)])
            return
        try:
            signals = decode_signals(raw)
        except WireError as exc:      # ignored, recorded under the proposal id it claims
            self._publish([self.gate.on_refused_verdict(
                exc.proposal_id, Reason.OVERSIZE if exc.oversize else Reason.MALFORMED, str(exc),
                now)])
            return
        except Exception as exc:  # noqa: BLE001 - any undecodable verdict is ignored, recorded
            self._publish([self.gate.on_refused_verdict('', Reason.MALFORMED, repr(exc), now)])
            return
        try:
            decisions = self.gate.on_signals(signals, now)
        except Exception as exc:  # noqa: BLE001
            decisions = [self._internal_error(signals.proposal_id, '', exc)]
        self._publish(decisions)

    def on_odometry(self, raw: bytes) -> None:
        if self.gate is None:
            return
        try:
            odometry = odometry_from_bytes(raw)
        except Exception as exc:  # noqa: BLE001 - ignored: the last odometry ages out (stop)
            self.get_logger().warning(f'unreadable odometry ignored: {exc}',
                                      throttle_duration_sec=5.0)
            return
        self.gate.on_odometry(odometry)

    def _subscribe_status(self):
        return self.create_subscription(OracleStatusMsg, topics.ORACLE_STATUS, self.on_status,
                                        qos.STATUS)

    def _watch_status(self) -> str:
        """Subscribe again after STATUS_SILENCE_S without a governance status (at most once in
        that time); returns what was done, for diagnostics, or ''."""
        now = time.monotonic_ns()
        silent_s = (now - self._status_heard_ns) / 1e9
        if (self.status_sub is None or silent_s < STATUS_SILENCE_S
                or now - self._resubscribed_ns < STATUS_SILENCE_S * 1e9):
            return ''
        matched = self.status_sub.get_publisher_count()
        self.destroy_subscription(self.status_sub)
        self.status_sub = self._subscribe_status()
        self._resubscribed_ns = now
        self.resubscribed += 1
        why = (f'no governance status for {silent_s:.0f}s ({matched} publisher(s) matched on '
               f'{self.status_sub.topic_name}): subscribed again')
        self.get_logger().warning(why)
        return why

    def on_status(self, msg: OracleStatusMsg) -> None:
        self._status_heard_ns = time.monotonic_ns()
        if self.gate is None:
            return
        before = self.gate.accepted_versions
        problem = self.gate.on_status(status_from_msg(msg), self.now())
        if problem is not None:
            self.get_logger().warning(f'governance status ignored: {problem}',
                                      throttle_duration_sec=5.0)
        elif self.gate.accepted_versions != before:
            self.get_logger().info(f'accepted Oracle versions now '
                                   f'{sorted(self.gate.accepted_versions)} (governance: active '
                                   f'{msg.active_version or "none"})')

    def on_tick(self) -> None:
        problem = self.output.check(time.monotonic_ns())
        if problem is not None:
            self._output_problem = problem
            self.get_logger().error(f'{problem}: stop published by the gate, approval withdrawn',
                                    throttle_duration_sec=1.0)
            if self.gate is not None:
                self.gate.withdraw()
        if self.gate is None:
            return
        self._publish(self.gate.tick(self.now()))
        for digest in [d for d in self._asking if d not in self.gate.escalations]:
            self.verify_client.remove_pending_request(self._asking.pop(digest))
        stopped = self._approval() is None or not self._approval().in_force(time.monotonic_ns())
        if stopped != self._stopped:
            self._stopped = stopped
            if stopped:
                self.get_logger().warning('no approved command in force: publishing stop')
            else:
                self.get_logger().info('approved command in force')

    # -- outputs --------------------------------------------------------------------------------

    def _publish_stop(self) -> None:
        """Stop on this node's own publisher: only while the output process cannot."""
        if self.config.stamped:
            msg = TwistStamped()
            msg.header.stamp = to_time(self.ros_ns())
            msg.header.frame_id = 'base_link'
            self.cmd_pub.publish(msg)
        else:
            self.cmd_pub.publish(Twist())

    def _publish(self, decisions: list[Decision]) -> None:
        self.output.hand_off(self._approval())   # a new approval or a withdrawal: at once
        for decision in decisions:
            self._rate.add()
            if decision.latency_ns > 0:
                self._latency.add(decision.latency_ns * 1e-9)
            if decision.action >= Action.BLOCK:
                self._last_rejection = (f'{decision.action.name} {decision.proposal_id}: '
                                        f'{decision.findings[0].reason.name} '
                                        f'{decision.findings[0].detail}')[:256]
                self.get_logger().info(
                    f'{decision.action.name} {decision.subject.name.lower()} '
                    f'{decision.proposal_id}: '
                    + '; '.join(f'{f.reason.name} {f.detail}' for f in decision.findings),
                    throttle_duration_sec=1.0)
            self.seq += 1
            self.decision_pub.publish(decision_to_msg(decision, self.epoch, self.seq,
                                                      self.config.frame_id))
        if self.gate is not None:
            self._ask()

    def _ask(self) -> None:
        """Send the verifier the proposals just escalated (their bytes as received)."""
        for request in self.gate.take_requests():
            future = self.verify_client.call_async(Verify.Request(
                proposal=array('B', request.proposal), proposal_digest=request.proposal_digest,
                hold=request.hold))
            self._asking[request.proposal_digest] = future
            future.add_done_callback(lambda f, digest=request.proposal_digest:
                                     self.on_answer(digest, f))

    def on_answer(self, digest: str, future) -> None:
        self._asking.pop(digest, None)
        if not self.active or self.gate is None or future.cancelled():
            return
        now = self.now()
        try:
            answer = answer_from_msg(future.result().answer)
        except Exception as exc:  # noqa: BLE001 - no answer: the escalation times out
            self.get_logger().warning(f'verifier call for {digest[:16]} failed: {exc!r}',
                                      throttle_duration_sec=1.0)
            return
        try:
            decisions = self.gate.on_answer(answer, now, digest)
        except Exception as exc:  # noqa: BLE001
            decisions = [self._internal_error(self.gate.escalations.proposal_id(digest), '', exc)]
        self._publish(decisions)

    def _publish_inactive(self, raw: bytes, now: Now) -> None:
        """A proposal while not active, or while the output process is not up: decided BLOCK
        (INACTIVE) under the id it claims."""
        try:
            ids = decode_proposal(raw, self.config.max_points)
            proposal_id, proposer_id = ids.proposal_id, ids.proposer_id
        except WireError as exc:
            proposal_id, proposer_id = exc.proposal_id, exc.proposer_id
        state = ('unconfigured' if self.gate is None else 'inactive' if not self.active
                 else 'waiting for its output process (restarting)')
        self._publish([Decision(proposal_id, proposer_id, '', Action.BLOCK, (Finding(
            Action.BLOCK, Reason.INACTIVE, f'the gate is {state}'),), '', '', None, now.ros_ns,
            0)])

    def on_diagnostics(self) -> None:
        """Fail-closed state, what counts, how busy, what went wrong since the last report."""
        if self.gate is None or not self.active:
            self.diagnostics_pub.publish(diagnostics.health_to_msg([Health(
                'alignment_flywheel: gate', self.get_fully_qualified_name(), Level.WARN,
                f'{"inactive" if self.gate else "unconfigured"}: publishing stop, nothing '
                'passes', (('decisions', str(self.seq)),))], self.ros_ns()))
            return
        resubscribed = self._watch_status()
        counts, before = self.gate.counts, self._counted
        self._counted = counts.copy()
        new = {k: counts[k] - before.get(k, 0) for k in counts}
        command = self.gate.command_at(time.monotonic_ns())
        level, message = Level.OK, 'approved command in force'
        if self.gate.keyring is None:
            level, message = Level.WARN, AUTH_OFF
            self.get_logger().warning(AUTH_OFF, throttle_duration_sec=10.0)
        if command is None:
            level, message = Level.WARN, 'stopped: no approved command in force'
        if new.get('lost') or new.get('overload') or new.get('OVERLOAD'):
            level, message = Level.WARN, 'overloaded: proposals shed or lost'
        if any(k.startswith('ignored_') and v for k, v in new.items()):
            level, message = Level.WARN, 'verdicts ignored (forged, replayed or malformed)'
        verifier_ready = self.verify_client.service_is_ready()
        if not verifier_ready and level == Level.OK:
            level, message = Level.WARN, 'no verifier service: escalations stay stopped'
        if not self.gate.accepted_versions:
            level, message = Level.ERROR, 'no Oracle version accepted: the robot stays stopped'
        if resubscribed:
            level, message = max(level, Level.WARN), f'{resubscribed}; {message}'
        if new.get('INTERNAL_ERROR') or new.get('STALE_ODOMETRY'):
            level, message = Level.ERROR, ('internal error' if new.get('INTERNAL_ERROR')
                                           else 'no fresh odometry: nothing can be approved')
        if self._output_problem:
            level, message = Level.ERROR, f'{self._output_problem}: stopped, output replaced'
            self._output_problem = ''
        now = self.ros_ns()
        values = (('command_in_force', str(command)),
                  ('accepted_oracle_versions', ','.join(sorted(self.gate.accepted_versions))),
                  ('decisions_per_s', f'{self._rate.rate(time.monotonic_ns()):.1f}'),
                  ('decision_latency', self._latency.summary()),
                  ('last_rejection', self._last_rejection),
                  ('epoch', str(self.epoch)), ('decisions', str(self.seq)),
                  ('output_pid', str(self.output.pid)),
                  ('output_restarts', str(self.output.restarts)),
                  ('verifier_ready', str(verifier_ready)),
                  ('escalations_waiting', str(len(self.gate.escalations))),
                  ('status_resubscribed', str(self.resubscribed)),
                  ) + counts_text(counts, ('ALLOW', 'DEGRADE', 'ESCALATE', 'BLOCK', 'FALLBACK',
                                           'lost', 'overload', 'OVERSIZE', 'MALFORMED',
                                           'status_refused', 'verified', 'not_verified')
                                   + tuple(sorted(
                                               k for k in counts if k.startswith('ignored_'))))
        self.diagnostics_pub.publish(diagnostics.health_to_msg([Health(
            'alignment_flywheel: gate', self.get_fully_qualified_name(), level, message,
            values)], now))

    def _internal_error(self, proposal_id: str, proposer_id: str, exc: Exception) -> Decision:
        self.get_logger().error(f'{proposal_id}: {exc!r}; falling back to stop')
        if self.gate is None:
            raise exc
        return self.gate.fallback(proposal_id, proposer_id,
                                  Finding(Action.FALLBACK, Reason.INTERNAL_ERROR, repr(exc)),
                                  self.now())

    def on_process_exit(self) -> None:
        """Last word on cmd_vel: stop (while the publisher still works), acknowledged."""
        self._stop_now()
        self.output.stop()
        self.cmd_pub.wait_for_all_acked(Duration(seconds=1.0))


def build() -> GateNode:
    return autostart(GateNode())


def main(argv=None) -> int:
    return run_node('gate', build, argv)


if __name__ == '__main__':
    raise SystemExit(main())
