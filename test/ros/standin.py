"""A Nav2 stand-in without Nav2, shared by test/ros/test_nav2_standin.py and bench/nav2_stop.py.

A controller publishes a constant twist (0.5 m/s straight ahead) at 20 Hz on cmd_vel_in, as a
Nav2 controller server does, into the Proposer in adapter mode; the Oracle, the Gate and the sim
are real processes. One run = a fresh sim process whose world starts the robot either facing an
obstacle or in a free corridor, the controller switched on, and what comes back measured:

- time to stop: from the Gate's decisive refusal (a BLOCK, FALLBACK or ESCALATE decision, its
  header stamp: when the Gate decided; decisive: the first after the last approval before the
  robot came to rest) to the first odometry of that rest (its stamp: the sim step that executed
  the stop); the rest must last HOLD_SECONDS while the controller keeps pushing. Both stamps
  come from the nodes' clocks on this host, so the figure excludes this process's own delivery
  delays. A refusal the robot drove on after (an approval followed it) is counted, not timed.
- stops on a free run: any refusal or any zero-speed odometry once the robot has moved. With
  nothing in the way, a refusal judged on risk is a false stop. A refusal only for lateness
  (LATE_REASONS: an input that did not arrive in time, or a proposal the Oracle shed under
  overload) is the Gate failing closed on a starved machine, not a wrong judgement: such runs are
  counted apart (`starved`), with the zero-speed odometry that follows them, and reported.

Nothing here waits by sleeping: each step waits for what the system publishes (odometry at the
start pose, a moving robot, a refusal, zero speed); only the controller's own 20 Hz pace is a
clock.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

CONTROLLER_RATE = 20.0      # Hz, a Nav2 controller_server's usual controller_frequency
SPEED = 0.5                 # m/s straight ahead
# Facing shelf_a (its west face at x = 4.0) across 1.7 m of free floor.
OBSTACLE_START = (2.0, 4.0, 0.0)
# Along y = 1, east: the nearest obstacle (shelf_a) is 1.3 m to the side, the pillar 3.7 m ahead.
FREE_START = (1.5, 1.0, 0.0)
FREE_SECONDS = 4.0          # of driving per free run (2 m, ending 1.7 m short of the pillar)
# Refusals for lateness, not risk: the Oracle shed the proposal unscored, a verdict or odometry
# did not arrive in time, or the proposal was planned from odometry the robot had since left
# (the planner's input was late by more than the anchor tolerance).
LATE_REASONS = ('OVERLOAD', 'NO_VERDICT', 'STALE_VERDICT', 'STALE_PROPOSAL', 'STALE_ODOMETRY',
                'START_POSE_MISMATCH')
HOLD_SECONDS = 1.0          # after a stop, the controller keeps pushing: the robot must stay put
START_TOLERANCE = 0.01      # m: odometry at the world's start pose means the new sim runs


def world_with_start(source: Path, directory: Path, start: tuple[float, float, float]) -> Path:
    """The world YAML ``source`` with the robot starting at ``start`` (written in directory)."""
    doc = yaml.safe_load(source.read_text())
    doc['start'] = list(start)
    out = directory / f'world_{start[0]:g}_{start[1]:g}_{start[2]:g}.yaml'
    out.write_text(yaml.safe_dump(doc))
    return out


@dataclass
class Run:
    kind: str                               # 'obstacle' or 'free'
    moved: bool = False
    refusal_ns: int | None = None           # first refusal after moving (Gate's stamp)
    refusal_reasons: tuple[int, ...] = ()
    stopped_ns: int | None = None           # first zero-speed odometry after it (sim's stamp)
    stayed_stopped: bool | None = None      # obstacle: at rest for HOLD_SECONDS, pushed on
    collided: bool = False
    stops: int = 0                          # free: refusals on risk + zero-speed odometry
                                            # (unless starved); obstacle: refusals the robot
                                            # drove on after
    starved: int = 0                        # free: refusals only for lateness (LATE_REASONS)
    distance: float = 0.0                   # m driven
    notes: list[str] = field(default_factory=list)

    @property
    def time_to_stop(self) -> float | None:
        if self.refusal_ns is None or self.stopped_ns is None:
            return None
        return (self.stopped_ns - self.refusal_ns) * 1e-9


class StandIn:
    """This process's side: the controller and the listeners, on a node of its own context,
    spun by a thread of its own (callbacks only record, under one condition variable)."""

    def __init__(self, domain_id: int):
        import rclpy
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from alignment_flywheel.msg import GateDecision, Incident
        from flywheel.ros import qos, topics
        from flywheel.ros.transport import creating_participant
        self._Twist = Twist
        self.GateDecision = GateDecision
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id, args=[])
        with creating_participant(print):
            self.node = rclpy.create_node('nav2_standin', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.changed = threading.Condition()
        self.odometry: list = []            # (stamp_ns, x, y, v, w)
        self.decisions: list = []           # (stamp_ns, action, reasons, details)
        self.collisions: list = []
        self.cmd_vel_in = self.node.create_publisher(Twist, topics.CMD_VEL_IN, qos.COMMAND)
        self.node.create_subscription(Odometry, topics.ODOM, self._on_odom, qos.SENSOR)
        self.node.create_subscription(GateDecision, topics.GATE_DECISIONS, self._on_decision,
                                      qos.RECORDS)
        self.node.create_subscription(Incident, topics.INCIDENTS, self._on_incident, qos.STREAM)
        self._speed: float | None = None    # None: the controller is silent
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._spin, daemon=True),
                         threading.Thread(target=self._control, daemon=True)]
        for t in self._threads:
            t.start()

    # -- callbacks (record only) -------------------------------------------------------------

    def _on_odom(self, msg) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        p, t = msg.pose.pose.position, msg.twist.twist
        with self.changed:
            self.odometry.append((stamp, p.x, p.y, t.linear.x, t.angular.z))
            self.changed.notify_all()

    def _on_decision(self, msg) -> None:
        if msg.subject != self.GateDecision.SUBJECT_PROPOSAL:
            return
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.changed:
            self.decisions.append((stamp, msg.action, tuple(msg.reasons), tuple(msg.details)))
            self.changed.notify_all()

    def _on_incident(self, msg) -> None:
        if msg.severity == msg.SEVERITY_COLLISION:
            with self.changed:
                self.collisions.append(msg.object_id)
                self.changed.notify_all()

    # -- threads ---------------------------------------------------------------------------

    def _spin(self) -> None:
        while not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - the context is being shut down
                return

    def _control(self) -> None:
        """The stand-in controller: a Twist every 1/20 s while switched on (its own pace)."""
        period = 1.0 / CONTROLLER_RATE
        next_tick = time.monotonic()
        while not self._stop.is_set():
            speed = self._speed
            if speed is not None:
                msg = self._Twist()
                msg.linear.x = speed
                try:
                    self.cmd_vel_in.publish(msg)
                except Exception:  # noqa: BLE001 - the context is being shut down
                    return
            next_tick += period
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def drive(self, speed: float | None) -> None:
        self._speed = speed

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(condition, timeout)

    def clear(self) -> None:
        with self.changed:
            self.odometry.clear()
            self.decisions.clear()
            self.collisions.clear()

    def close(self) -> None:
        self._speed = None
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown()
        self.context.try_shutdown()

    # -- one run ---------------------------------------------------------------------------

    def run(self, kind: str, start: tuple[float, float, float],
            start_sim: Callable[[], object], stop_sim: Callable[[object], None],
            ready_timeout: float = 30.0) -> Run:
        """One run on a fresh sim (``start_sim()`` starts it at ``start``; ``stop_sim`` ends it,
        always)."""
        assert kind in ('obstacle', 'free')
        result = Run(kind)
        self.drive(None)
        self.clear()
        sim = start_sim()
        try:
            at_start = lambda: any(  # noqa: E731
                math.hypot(x - start[0], y - start[1]) < START_TOLERANCE
                for _, x, y, _, _ in self.odometry)
            if not self.wait(at_start, ready_timeout):
                exited = sim.exited() if hasattr(sim, 'exited') else {}
                result.notes.append('no odometry from the sim'
                                    + (f' (exited: {exited})' if exited else ''))
                return result
            self.drive(SPEED)
            moving = lambda: next((o for o in self.odometry if o[3] > 0.0), None)  # noqa: E731
            if not self.wait(lambda: moving() is not None, ready_timeout):
                result.notes.append('the robot never moved')
                return result
            result.moved = True
            moved_ns = moving()[0]
            if kind == 'obstacle':
                self._measure_stop(result, moved_ns)
            else:
                self._count_stops(result, moved_ns)
            with self.changed:
                result.collided = bool(self.collisions)
                xs = [x for _, x, _, _, _ in self.odometry]
                result.distance = max(xs) - start[0] if xs else 0.0
            return result
        finally:
            self.drive(None)
            stop_sim(sim)

    def _refusals_after(self, since_ns: int) -> list:
        stopping = (self.GateDecision.ACTION_ESCALATE, self.GateDecision.ACTION_BLOCK,
                    self.GateDecision.ACTION_FALLBACK)
        return [d for d in self.decisions if d[0] >= since_ns and d[1] in stopping]

    def _measure_stop(self, result: Run, moved_ns: int) -> None:
        """Wait until the robot has been at rest for HOLD_SECONDS while the controller keeps
        pushing; then time the decisive refusal: the first one after the last approval before
        the robot came to rest. Refusals before that approval interrupted the approach (the
        robot drove on): they are counted as stops, not timed."""
        hold_ns = int(HOLD_SECONDS * 1e9)

        def rest_start() -> int | None:
            """Stamp of the first odometry of the trailing zero-speed run, if it is long enough."""
            first = None
            for stamp, _, _, v, w in reversed(self.odometry):
                if stamp <= moved_ns or v != 0.0 or w != 0.0:
                    break
                first = stamp
            if first is None or self.odometry[-1][0] - first < hold_ns:
                return None
            return first
        if not self.wait(lambda: rest_start() is not None, 30.0):
            result.stayed_stopped = False
            result.notes.append('never at rest for '
                                f'{HOLD_SECONDS} s (drove into the obstacle, or crept on)')
            return
        result.stayed_stopped = True
        approving = (self.GateDecision.ACTION_ALLOW, self.GateDecision.ACTION_DEGRADE)
        with self.changed:
            rest = rest_start()
            approvals = [d[0] for d in self.decisions if d[1] in approving and d[0] < rest]
            last_approval = max(approvals, default=moved_ns)
            refusals = self._refusals_after(moved_ns)
        decisive = [d for d in refusals if d[0] > last_approval]
        result.stops = len([d for d in refusals if d[0] < last_approval])
        if not decisive:
            result.notes.append('at rest without a refusal after the last approval')
            return
        result.refusal_ns, result.refusal_reasons = decisive[0][0], decisive[0][2]
        result.stopped_ns = rest
        if result.stops:
            early = sorted({r for d in refusals if d[0] < last_approval for r in d[2]})
            result.notes.append(f'{result.stops} refusals before the last approval, reasons '
                                f'{early}')

    def _count_stops(self, result: Run, moved_ns: int) -> None:
        until = moved_ns + int(FREE_SECONDS * 1e9)
        if not self.wait(lambda: self.odometry[-1][0] >= until, FREE_SECONDS + 10.0):
            result.notes.append('odometry stopped arriving')
        with self.changed:
            refusals = [d for d in self._refusals_after(moved_ns) if d[0] <= until]
            zero = [o for o in self.odometry if moved_ns < o[0] <= until and o[3] == 0.0]
        late = {getattr(self.GateDecision, f'REASON_{name}') for name in LATE_REASONS}
        starved = [d for d in refusals if set(d[2]) <= late]
        result.starved = len(starved)
        # The zero speed after a starved refusal is that refusal's stop, not a second one.
        result.stops = len(refusals) - len(starved) + (0 if starved else len(zero))
        if refusals:
            result.notes.append(f'refusal reasons {sorted({r for d in refusals for r in d[2]})}'
                                f' (first: {"; ".join(refusals[0][3])})')
