"""Staged rollout under a 50 Hz proposal stream, through the real nodes and real signed releases.

Governance, the Oracle and the Gate run as separate processes, each robot with its own lifecycle
manager, started by `flywheel.cli.graph.fleet` as `flywheel up --with governance --only
oracle,gate [--robots N]` starts them; this driver stands in for the proposer and the base (signed
20-point proposals and odometry at 50 Hz per robot, the robot standing at the trajectories' start)
and for the operator (releases built, signed 1-of-1 with this run's own operator key and submitted
to governance/submit_release). Every release is verified by governance and again by the Oracle;
the candidate's spec differs from the active one only in its version, so each stage should pass.

1. push -> full with governance's default plan (config/rollout.yaml: shadow, canary, full with
   their minimum durations and sample counts), one robot, ``--cycles`` releases in a row: when
   each stage started and ended (governance's events), the samples each stage saw, when the
   Oracle ran the new release alone (its signed report, on the status), and that every proposal
   sent got exactly one PROPOSAL decision on gate_decisions.
2. In the same run, the phases alternate single release -> shadow -> canary -> single (after
   promotion) -> ...: the Gate's decision latency (GateDecision.latency: proposal stamp ->
   decision, measured by the Gate) and proposal -> cmd_vel (DDS reception of the first command
   carrying the proposal's unique linear.x, minus the wall clock just before publish(), as
   bench/end_to_end.py does) per phase, p50 and p99, and the extra over single-release operation.
   A proposal belongs to the phase its robot's signed status named when it was sent; proposals
   sent from 0.3 s before to 1 s after a change of stage, or of the releases the Oracle reports
   it scores with (oracle/running), are left out (the change itself is not steady state).
3. Fleets of N robots (namespaces robot_0.., as `--robots N`), N = ``--robots``: the Oracle's own
   evaluation time and proposal -> verdict (the verdict's stamp, taken after scoring), the Gate's
   proposal -> decision, per phase, with every proposal without a decision, NO_VERDICT and
   OVERLOAD counted, and the rollout time push -> full under a shorter plan (printed with the
   table). All robots share this machine's cores with the driver (its own CPU share is printed).
   Governance starts first, then the robots one by one, each once the one before runs release 1
   (``--all-at-once``: every node at once, as `flywheel up` does). Every lifecycle manager gets
   ``--transition-timeout`` 60 s and ``--heartbeat-timeout`` 10 s (node defaults 15 s and 4 s: with
   those, 10 robots on 2 cores did not come up, or governance was silent for seconds while they
   did and its manager took the graph down); the output says so. Beyond about 7 robots the
   participants on this host outnumber the 32 ports the nodes' UDP profile announces to and
   discovery fails: a fleet of 10 is a run of its own with ``--peers-range 64`` (the profile
   applies to every process of the run, so it is not mixed into the other measurements). On a
   loaded 2-core machine even then the 9th or 10th robot may not come up: a lifecycle manager's
   change_state answer can be dropped before its reader is matched, and the manager does not ask
   again (the run then says which robot, and measures nothing for that N).

    scripts/run.sh python bench/rollout.py [--quick] [--parts rollout,fleet] [--robots 1,3]
                                           [--cycles 2] [--single S] [--audit] [--all-at-once]
                                           [--transition-timeout S] [--heartbeat-timeout S]

``--quick`` is a smoke run (a tiny plan, a few seconds per phase, fleets of 1 and 3; about
two minutes). The default is the real measurement, on a 2-core machine about 4 min for parts 1-2
(``--parts rollout``) and 1 min each for fleets of 1 and 3 robots; 3-4 min more for 10 robots
(``--parts fleet --robots 10 --peers-range 64``).
"""
from __future__ import annotations

import argparse
import bisect
import collections
import dataclasses
import math
import os
import re
import resource
import signal
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Children, Receiver, command_line, isolate_ros, load, machine,  # noqa: E402
                    node_env, provision_keys)

TRANSPORT = isolate_ros()

import rclpy  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from alignment_flywheel.msg import GateDecision, GovernanceEvent, OracleStatus  # noqa: E402
from alignment_flywheel.msg import OracleRunning, Proposal  # noqa: E402
from alignment_flywheel.srv import SubmitRelease  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402
from flywheel.auth import load_message_key  # noqa: E402
from flywheel.cli.graph import MANAGER, fleet, robot_namespaces  # noqa: E402
from flywheel.provision import NODE_KEYS, OPERATOR  # noqa: E402
from flywheel.release.bundle import build_bundle, sign_bundle  # noqa: E402
from flywheel.release.keys import load_signer  # noqa: E402
from flywheel.release.rollout import RolloutPlan, Stage, parse_plan  # noqa: E402
from flywheel.ros import qos, topics  # noqa: E402
from flywheel.ros.convert import from_time, to_time  # noqa: E402
from flywheel.ros.params import package_config_dir  # noqa: E402
from flywheel.wire import encode_proposal  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test.helpers import straight  # noqa: E402

RATE = 50.0
PERIOD = 1.0 / RATE
START = (1.5, 1.0, 0.0)
GUARD_BEFORE_NS, GUARD_AFTER_NS = 300_000_000, 1_000_000_000
DRAIN_S = 3.0                     # after the last proposal: > verdict_timeout, with room
TARGET_EXTRA_P50_MS = 1.0
SINGLE, SHADOW, CANARY = 'single release', 'shadow', 'canary'
PHASES = (SINGLE, SHADOW, CANARY)
STAGE_PHASE = {OracleStatus.STAGE_NONE: SINGLE, OracleStatus.STAGE_SHADOW: SHADOW,
               OracleStatus.STAGE_CANARY: CANARY}
APPROVING = (GateDecision.ACTION_ALLOW, GateDecision.ACTION_DEGRADE)
# Every command and record, even if this process's executor falls behind for a while.
EVERY = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10_000,
                   reliability=ReliabilityPolicy.RELIABLE)
PLAN_FILE = package_config_dir() / 'rollout.yaml'


# -- plans ---------------------------------------------------------------------------------------

def shortened(min_s: float, samples: int, max_s: float) -> dict:
    """config/rollout.yaml with shorter stages: every threshold kept, only the minimum duration,
    the minimum sample count and the maximum duration changed."""
    doc = yaml.safe_load(PLAN_FILE.read_text())
    for rule in doc['rules'].values():
        rule.update(min_duration_s=float(min_s), min_samples=int(samples),
                    max_duration_s=float(max_s))
    return doc


def describe(plan: RolloutPlan) -> str:
    parts = [f'{s.value} >= {plan.rule(s).min_duration_s:g} s and >= {plan.rule(s).min_samples} '
             f'samples (max {plan.rule(s).max_duration_s:g} s)' for s in plan.stages[:-1]]
    return ', '.join(parts) + f', then full; canary_robots {plan.canary_robots}'


def brief(plan: RolloutPlan) -> str:
    return ', '.join(f'{s.value} {plan.rule(s).min_duration_s:g} s / {plan.rule(s).min_samples}'
                     for s in plan.stages[:-1]) + f', k={plan.canary_robots}'


def wait_budget_s(plan: RolloutPlan, robots: int) -> float:
    """How long a rollout may take before the bench calls it stuck: twice what each stage needs
    (its minimum duration, or its samples at 50 Hz from the robots that feed it), plus a minute,
    never past the plan's own maximum durations."""
    need = 0.0
    for stage in plan.stages[:-1]:
        rule = plan.rule(stage)
        feeding = min(plan.canary_robots, robots) if stage is Stage.CANARY else robots
        need += max(rule.min_duration_s, rule.min_samples / (RATE * feeding))
    most = sum(plan.rule(s).max_duration_s for s in plan.stages[:-1]) + 30.0
    return min(2 * need + 60.0, most)


def spec_text(version: str) -> bytes:
    base = (package_config_dir() / 'oracle_spec.yaml').read_text()
    return base.replace('version: "1.0.0"', f'version: "{version}"', 1).encode()


def release(number: int, keys: Path) -> tuple[str, bytes]:
    """Release ``number`` (Oracle version 1.<number-1>.0), signed by this run's operator key,
    carrying no plan of its own (governance's rollout_plan_path applies)."""
    version = f'1.{number - 1}.0'
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    bundle = sign_bundle(build_bundle(spec_text(version), number, expires),
                         load_signer(keys / OPERATOR))
    return version, bundle


# -- the driver ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Sent:
    stamp_ns: int           # the proposal's stamp (node clock = wall clock)
    published_ns: int       # wall clock just before publish()
    returned_ns: int        # publish() returned
    record: bool            # inside the measured window (after warm-up)


@dataclasses.dataclass
class Record:
    """A PROPOSAL decision, as much of it as the tables need."""

    action: int
    reasons: tuple
    latency_ns: int
    stamp_ns: int
    verdicts: int
    version: str            # of the first (the active release's) verdict
    evaluation_ns: int      # the active verdict's evaluation_duration
    verdict_ns: int         # the active verdict's stamp
    candidate_evaluation_ns: int
    candidate_verdict_ns: int


class Robot:
    """One robot's topics: what is sent to it and what its nodes and governance say."""

    def __init__(self, node, ns: str, commands: bool):
        self.ns = ns
        name = (lambda t: f'{ns}/{t}') if ns else (lambda t: t)
        self.proposals = node.create_publisher(Proposal, name(topics.PROPOSALS), qos.STREAM)
        self.odometry = node.create_publisher(Odometry, name(topics.ODOM), qos.SENSOR)
        node.create_subscription(GateDecision, name(topics.GATE_DECISIONS), self.on_decision,
                                 qos.RECORDS)
        node.create_subscription(OracleStatus, name(topics.ORACLE_STATUS), self.on_status,
                                 qos.STATUS)
        node.create_subscription(OracleRunning, name(topics.ORACLE_RUNNING), self.on_running,
                                 qos.STATUS)
        self.running: tuple[str, str] | None = None     # what the Oracle reports it scores with
        if commands:
            node.create_subscription(Twist, name(topics.CMD_VEL), self.on_command, EVERY)
        self._gate_state = node.create_client(GetState, name('gate/get_state'))
        self._asked = None
        self._asked_at = 0.0
        self.gate_up = False
        self.sent: dict[str, Sent] = {}
        self.decisions: dict[str, list[Record]] = collections.defaultdict(list)
        # SHADOW records: the candidate's (evaluation, stamp) for each proposal
        self.shadow: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
        self.other = 0                              # records about no proposal's decision
        self.statuses: list[tuple[int, OracleStatus]] = []
        self.status_t: list[int] = []
        self.changes: list[int] = []                # when the stage or what runs changed
        # (status and report callbacks run on one thread: appended in time order)
        self.in_flight: dict[float, tuple[str, int]] = {}   # linear.x -> (proposal, sent ns)
        self.command_ns: dict[str, int] = {}        # proposal -> first command received - sent
        self.allowed = 0

    def on_decision(self, d: GateDecision) -> None:
        if d.subject == GateDecision.SUBJECT_SHADOW:
            v = d.signals[0] if len(d.signals) else None
            self.shadow[d.proposal_id].append(
                (from_time(v.evaluation_duration), from_time(v.header.stamp)) if v else (0, 0))
            return
        if d.subject != GateDecision.SUBJECT_PROPOSAL:
            self.other += 1
            return
        s = d.signals
        first = s[0] if len(s) else None
        second = s[1] if len(s) > 1 else None
        self.decisions[d.proposal_id].append(Record(
            d.action, tuple(d.reasons), from_time(d.latency), from_time(d.header.stamp), len(s),
            first.oracle_version if first else '',
            from_time(first.evaluation_duration) if first else 0,
            from_time(first.header.stamp) if first else 0,
            from_time(second.evaluation_duration) if second else 0,
            from_time(second.header.stamp) if second else 0))
        if d.action == GateDecision.ACTION_ALLOW:
            self.allowed += 1

    def on_status(self, msg: OracleStatus) -> None:
        now = time.time_ns()
        key = (msg.stage, msg.active_version, msg.oracle_running, msg.candidate_version)
        if self.statuses:
            last = self.statuses[-1][1]
            if key != (last.stage, last.active_version, last.oracle_running,
                       last.candidate_version):
                self.changes.append(now)
        self.statuses.append((now, msg))
        self.status_t.append(now)

    def on_running(self, msg: OracleRunning) -> None:
        """The Oracle's own report (active, candidate): loading a candidate takes a while after
        the status names it, so its changes count as changes too."""
        key = (msg.active_version, msg.candidate_version)
        if self.running is not None and key != self.running:
            self.changes.append(time.time_ns())
        self.running = key

    def on_command(self, msg: Twist, info) -> None:
        sent = self.in_flight.pop(round(msg.linear.x, 6), None)
        if sent is not None:
            self.command_ns[sent[0]] = info['received_timestamp'] - sent[1]

    def gate_active(self) -> bool:
        """Whether the Gate said it is active (asks again each call until it has; a question
        unanswered for 2 s is asked again: while many robots come up, a service's response can
        be dropped before the client's response reader is matched)."""
        if self.gate_up:
            return True
        if self._asked is None:
            if self._gate_state.service_is_ready():
                self._asked = self._gate_state.call_async(GetState.Request())
                self._asked_at = time.monotonic()
        elif self._asked.done():
            answer, self._asked = self._asked.result(), None
            self.gate_up = answer is not None and answer.current_state.label == 'active'
        elif time.monotonic() - self._asked_at > 2.0:
            self._gate_state.remove_pending_request(self._asked)
            self._asked = None
        return self.gate_up

    def ready(self, version: str) -> bool:
        """Its Oracle runs ``version`` (its signed report, on the status) and its Gate is
        active."""
        status = self.status()
        return status is not None and status.oracle_running == version and self.gate_active()

    def status(self) -> OracleStatus | None:
        return self.statuses[-1][1] if self.statuses else None

    def phase_at(self, t_ns: int) -> str | None:
        """The phase this robot's status named at t_ns; None near a change (or before any)."""
        i = bisect.bisect_right(self.status_t, t_ns) - 1
        if i < 0:
            return None
        k = bisect.bisect_left(self.changes, t_ns - GUARD_AFTER_NS)
        if k < len(self.changes) and self.changes[k] <= t_ns + GUARD_BEFORE_NS:
            return None
        return STAGE_PHASE.get(self.statuses[i][1].stage)

    def runs_alone_since(self, version: str, after_ns: int) -> int | None:
        """When the status first said the Oracle runs ``version`` with no candidate."""
        for t, s in self.statuses:
            if t >= after_ns and s.oracle_running == version and s.active_version == version \
                    and not s.candidate_version:
                return t
        return None

    def first_alone_decision(self, version: str, after_ns: int) -> int | None:
        stamps = [r.stamp_ns for rs in list(self.decisions.values()) for r in rs  # still filling
                  if r.stamp_ns >= after_ns and r.verdicts == 1 and r.version == version]
        return min(stamps) if stamps else None


class Driver:
    """This process's node: robots' streams, governance's events, the operator's pushes. The
    subscriptions are taken on a thread of their own; proposals go out from the caller's."""

    def __init__(self, context, robots: list[str], keys: Path, commands: bool, seq0: int,
                 graphs=()):
        self.graphs = graphs
        self._checked = 0.0
        self.node = rclpy.create_node('bench_rollout', context=context)
        self.robots = [Robot(self.node, ns, commands) for ns in robots]
        self.events: list[tuple[int, GovernanceEvent]] = []
        self.node.create_subscription(GovernanceEvent, topics.GOVERNANCE_EVENTS,
                                      lambda e: self.events.append((time.time_ns(), e)),
                                      qos.RECORDS)
        self.submit = self.node.create_client(
            SubmitRelease, topics.service_of('governance', topics.SUBMIT_RELEASE))
        self.key = load_message_key(keys / NODE_KEYS['proposer'])
        self.epoch, self.seq = time.time_ns(), seq0
        self.streaming, self.record = False, False
        self.next_at = time.monotonic()
        self.ticks = self.late_ticks = self.skipped_ticks = 0
        self.receiver = Receiver(self.node, context)

    def close(self) -> None:
        self.receiver.close()
        self.node.destroy_node()

    # -- the stream -----------------------------------------------------------------------------

    def tick(self) -> None:
        """One proposal (and the odometry that anchors it) to every robot."""
        odom = Odometry()
        odom.header.frame_id = 'map'
        odom.pose.pose.position.x, odom.pose.pose.position.y = START[0], START[1]
        odom.pose.pose.orientation.w = 1.0
        for robot in self.robots:
            self.seq += 1
            v = round(0.2 + (self.seq % 200) * 0.001, 6)    # unique among those in flight
            odom.header.stamp = to_time(time.time_ns())
            robot.odometry.publish(odom)
            p = straight(*START, v, seq=self.seq)
            stamp = time.time_ns()              # as late as a proposer can: then sign, publish
            p = dataclasses.replace(p, stamp_ns=stamp, epoch=self.epoch)
            raw = encode_proposal(p, self.key)
            published = time.time_ns()
            robot.in_flight[v] = (p.proposal_id, published)
            robot.proposals.publish(raw)
            robot.sent[p.proposal_id] = Sent(stamp, published, time.time_ns(), self.record)

    def run_until(self, until, timeout: float, what: str = '') -> bool:
        """Keep the stream going (if on) until ``until()`` or the timeout (a RuntimeError naming
        ``what`` if given). A tick more than a period late is skipped, not sent in a burst."""
        deadline = time.monotonic() + timeout
        while not until():
            now = time.monotonic()
            if now - self._checked > 0.5:
                self._checked = now
                self.check_graphs()
            if now > deadline:
                if what:
                    raise RuntimeError(f'timed out after {timeout:.0f} s waiting for {what}')
                return False
            if not self.streaming:
                time.sleep(0.01)
                continue
            if now >= self.next_at:
                self.tick()
                self.ticks += 1
                self.next_at += PERIOD
                behind = time.monotonic() - self.next_at
                if behind > PERIOD:
                    self.late_ticks += 1
                    skip = int(behind / PERIOD)
                    self.skipped_ticks += skip
                    self.next_at += skip * PERIOD
            time.sleep(max(0.0, min(self.next_at - time.monotonic(), 0.005)))
        return True

    def check_graphs(self) -> None:
        """A node process that exited ends the run at once (its log says why)."""
        for g in self.graphs:
            for name, code in g.exited().items():
                where = f' (log: {g.log_dir / (name + ".log")})' if g.log_dir else ''
                raise RuntimeError(f'{(g.namespace + "/" + name).lstrip("/")} exited with '
                                   f'{code}{where}')

    def start_stream(self) -> None:
        self.streaming, self.next_at = True, time.monotonic()

    def for_a_while(self, seconds: float) -> None:
        self.run_until(lambda: False, seconds)

    # -- governance -----------------------------------------------------------------------------

    def push(self, bundle: bytes, timeout: float = 60.0) -> int:
        """Submit a release (the stream goes on meanwhile); the wall clock when it was sent."""
        if not self.submit.wait_for_service(timeout_sec=timeout):
            raise RuntimeError('governance/submit_release never appeared')
        request = SubmitRelease.Request()
        request.bundle = list(bundle)
        t0 = time.time_ns()
        future = self.submit.call_async(request)
        self.run_until(future.done, timeout, 'governance to answer a submission')
        answer = future.result()
        if not answer.accepted:
            raise RuntimeError(f'release refused: {answer.reason}')
        return t0

    def events_of(self, number: int) -> list[GovernanceEvent]:
        return [e for _, e in list(self.events) if e.number == number]

    def rollout_ended(self, number: int) -> str | None:
        for e in self.events_of(number):
            if e.event == GovernanceEvent.EVENT_PROMOTED:
                return 'promoted'
            if e.event == GovernanceEvent.EVENT_ABORTED:
                return 'aborted'
            if e.event == GovernanceEvent.EVENT_PAUSED:
                return 'paused'
        return None


# -- one graph, one run --------------------------------------------------------------------------

@dataclasses.dataclass
class Rollout:
    number: int
    version: str
    push_ns: int
    outcome: str
    stages: dict          # stage -> {'start': ns, 'end': ns, 'samples': int|None, 'how': str}
    promoted_ns: int | None
    alone_ns: int | None          # every robot's Oracle runs it with no candidate (status)
    decided_alone_ns: int | None  # every robot's Gate decided on its verdict alone
    sent: int                     # proposals sent from push to the end of the rollout
    missing: int                  # of those, without a PROPOSAL decision
    reason: str = ''


@dataclasses.dataclass
class Run:
    label: str
    robots: list[str]
    plan: RolloutPlan
    plan_source: str
    rollouts: list[Rollout]
    driver: Driver
    bring_up_s: float             # start -> every robot's Oracle runs release 1, Gate active
    ready_s: list[float]          # each robot: its start (or the one before) -> ready
    wall_s: float
    cpu_s: float                  # this process (the driver)
    busy: float                   # the machine's CPU busy share over the run
    load: tuple[str, str]
    all_at_once: bool


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in open('/proc/stat').readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def stage_record(events: list[GovernanceEvent]) -> dict:
    stages: dict = {}
    for e in events:
        word = e.reason.split(' ', 1)[0]
        if e.event == GovernanceEvent.EVENT_STAGE_STARTED:
            stages.setdefault(word, {})['start'] = from_time(e.header.stamp)
        elif e.event in (GovernanceEvent.EVENT_STAGE_PASSED, GovernanceEvent.EVENT_STAGE_FAILED,
                         GovernanceEvent.EVENT_PAUSED):
            entry = stages.setdefault(word, {})
            entry['end'] = from_time(e.header.stamp)
            entry['how'] = {GovernanceEvent.EVENT_STAGE_PASSED: 'passed',
                            GovernanceEvent.EVENT_STAGE_FAILED: 'FAILED',
                            GovernanceEvent.EVENT_PAUSED: 'PAUSED'}[e.event]
            found = re.search(r'samples (\d+)', e.reason)
            entry['samples'] = int(found.group(1)) if found else None
            if e.event != GovernanceEvent.EVENT_STAGE_PASSED:
                entry['reason'] = e.reason
    return stages


def run_graph(label: str, robots: list[str], plan_doc: dict | None, releases: int,
              single_s: float, commands: bool, args, keys: Path, scratch: Path,
              context, seq0: int) -> Run:
    """Start the graph, install release 1, stream, measure ``single_s`` of single-release
    operation, then roll out releases 2..releases+1 one after the other, each followed by
    ``single_s`` of single-release operation; stop the graph (always)."""
    tag = re.sub(r'\W+', '_', label)
    if plan_doc is None:
        plan_path, plan_source = PLAN_FILE, 'config/rollout.yaml (the default)'
    else:
        plan_path = scratch / f'plan_{tag}.yaml'
        plan_path.write_text(yaml.safe_dump(plan_doc))
        plan_source = 'shortened from config/rollout.yaml, thresholds unchanged'
    plan = parse_plan(yaml.safe_load(plan_path.read_text()), str(plan_path))
    nodes = ('oracle', 'gate', 'governance') + (('audit',) if args.audit else ())
    overrides = {'governance': {'store_dir': str(scratch / f'store_{tag}'),
                                'rollout_plan_path': str(plan_path)}}
    if args.audit and robots == ['']:
        overrides['audit'] = {'ledger_path': str(scratch / f'audit_{tag}.sqlite')}
    graphs = fleet(nodes, args.params, robots, env=args.env, log_dir=scratch / f'logs_{tag}',
                   overrides=overrides)
    for g in graphs:        # fleet() gives governance's manager none of the overrides: set here
        g.overrides.setdefault(MANAGER, {}).update(
            transition_timeout=args.transition_timeout, heartbeat_timeout=args.heartbeat_timeout)
    driver = None
    load_start = load()
    busy0, total0 = cpu_times()
    wall0, cpu0 = time.monotonic(), sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    governance = next(g for g in graphs if 'governance' in g.nodes)
    robot_graphs = [g for g in graphs if g is not governance]     # in the order of robots
    rollouts, pending = [], []
    try:
        for g in graphs if args.all_at_once else [governance]:
            g.start()
        progress(f'{label}: started ' + ('every node at once' if args.all_at_once else
                                         'governance; the robots follow one by one')
                 + f' (logs in {scratch / f"logs_{tag}"})')
        driver = Driver(context, robots, keys, commands, seq0, graphs)
        first = driver.robots[0]
        driver.run_until(lambda: first.status() is not None and first.status().state == 'active',
                         120.0, 'governance to become active')
        version, bundle = release(1, keys)
        driver.push(bundle)
        ready_s = []
        for g, robot in zip(robot_graphs, driver.robots):
            began = time.monotonic()
            if not args.all_at_once:
                g.start()
            driver.run_until(lambda: robot.ready(version), 120.0,
                             f'{robot.ns or "the robot"}: its Oracle to run release 1 '
                             f'({version}) and its Gate to be active')
            ready_s.append(time.monotonic() - began)
        bring_up_s = time.monotonic() - wall0
        progress(f'{label}: {sum(len(g.processes) for g in graphs)} node processes up in '
                 f'{bring_up_s:.0f} s')
        for robot in driver.robots:
            deadline = time.monotonic() + 60.0
            while robot.proposals.get_subscription_count() < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError(f'{robot.ns or "/"}: the Oracle and the Gate never '
                                       'subscribed to proposals')
                time.sleep(0.05)
        driver.start_stream()
        driver.run_until(lambda: all(r.allowed >= 10 for r in driver.robots), 60.0,
                         'approvals to flow on every robot')
        driver.record = True
        progress(f'{label}: streaming; {single_s:g} s of single-release operation')
        driver.for_a_while(single_s)
        budget = wait_budget_s(plan, len(robots))
        for number in range(2, releases + 2):
            version, bundle = release(number, keys)
            sent_before, seq_before = sum(len(r.sent) for r in driver.robots), driver.seq
            progress(f'{label}: pushing release {number} ({version}); up to {budget:.0f} s')
            push_ns = driver.push(bundle)
            driver.run_until(lambda: driver.rollout_ended(number) is not None, budget)
            outcome = driver.rollout_ended(number) or 'timed out'
            if outcome == 'promoted':
                driver.run_until(lambda: all(r.runs_alone_since(version, push_ns)
                                             for r in driver.robots), 30.0)
            sent = sum(len(r.sent) for r in driver.robots) - sent_before
            ids = [(r, f'proposer/{k}') for k in range(seq_before + 1, driver.seq + 1)
                   for r in driver.robots]
            events = driver.events_of(number)
            promoted = next((from_time(e.header.stamp) for e in events
                             if e.event == GovernanceEvent.EVENT_PROMOTED), None)
            reason = next((e.reason for e in events if e.event in (
                GovernanceEvent.EVENT_ABORTED, GovernanceEvent.EVENT_PAUSED)), '')
            progress(f'{label}: release {number} {outcome}'
                     + (f' after {(promoted - push_ns) / 1e9:.1f} s' if promoted else '')
                     + (f': {reason}' if reason else '') + f'; {single_s:g} s single release')
            driver.for_a_while(single_s)
            alone = [r.runs_alone_since(version, push_ns) for r in driver.robots]
            decided = [r.first_alone_decision(version, push_ns) for r in driver.robots]
            rollouts.append(Rollout(
                number, version, push_ns, outcome, stage_record(events), promoted,
                max(alone) if all(alone) else None, max(decided) if all(decided) else None,
                sent, 0, reason))
            pending.append((rollouts[-1], ids))
            if outcome == 'timed out':
                break
        driver.streaming = False
        driver.for_a_while(DRAIN_S)
        for rollout, ids in pending:     # decided late ones are in by now
            rollout.missing = sum(1 for r, pid in ids if pid in r.sent
                                  and not r.decisions.get(pid))
    finally:
        if driver is not None:
            driver.streaming = False
            driver.close()
        for g in reversed(graphs):
            g.stop()
    busy1, total1 = cpu_times()
    return Run(label, robots, plan, plan_source, rollouts, driver, bring_up_s, ready_s,
               time.monotonic() - wall0,
               sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0,
               (busy1 - busy0) / max(1, total1 - total0), (load_start, load()),
               args.all_at_once)


# -- what the runs say ---------------------------------------------------------------------------

def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else math.nan


def ms(v: float) -> str:
    return '–' if math.isnan(v) else f'{v:.2f}'


def secs(v_ns: int | None, since_ns: int) -> str:
    return '–' if v_ns is None else f'{(v_ns - since_ns) / 1e9:.1f}'


@dataclasses.dataclass
class Tally:
    sent: int = 0
    missing: int = 0              # no PROPOSAL decision
    duplicated: int = 0           # more than one
    measured: int = 0             # sent after the warm-up
    no_verdict: int = 0           # these three: after the warm-up
    overload: int = 0
    not_approved: int = 0
    reasons: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    warmup: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def tally(run: Run) -> Tally:
    """Every proposal sent (missing, duplicated); the measured ones (after approvals first
    flowed on every robot): what was not approved and why; the warm-up's refusals apart."""
    t = Tally()
    for robot in run.driver.robots:
        for pid, sent in robot.sent.items():
            t.sent += 1
            records = robot.decisions.get(pid, [])
            if not records:
                t.missing += 1
                continue
            t.duplicated += len(records) > 1
            r = records[0]
            if not sent.record:
                if r.action not in APPROVING:
                    t.warmup.update(r.reasons)
                continue
            t.measured += 1
            t.no_verdict += GateDecision.REASON_NO_VERDICT in r.reasons
            t.overload += GateDecision.REASON_OVERLOAD in r.reasons
            if r.action not in APPROVING:
                t.not_approved += 1
                t.reasons.update(r.reasons)
    return t


def phases(run: Run) -> dict[str, dict[str, list[float]]]:
    """Per phase, lists of ms: gate (proposal -> decision), verdict (proposal -> active verdict
    stamp), evaluation (active), candidate (its evaluation), command (proposal -> cmd_vel), and
    the driver's own stamp -> publish() returned; plus counts."""
    out = {p: collections.defaultdict(list) for p in PHASES}
    for robot in run.driver.robots:
        for pid, s in robot.sent.items():
            if not s.record:
                continue
            phase = robot.phase_at(s.published_ns)
            if phase is None:
                continue
            m = out[phase]
            m['proposals'].append(1)
            m['driver'].append((s.returned_ns - s.stamp_ns) / 1e6)
            records = robot.decisions.get(pid)
            if not records:
                m['missing'].append(1)
                continue
            r = records[0]
            if GateDecision.REASON_NO_VERDICT in r.reasons:
                m['no_verdict'].append(1)
            if GateDecision.REASON_OVERLOAD in r.reasons:
                m['overload'].append(1)
            if phase == SHADOW:
                shadow = robot.shadow.get(pid)
                if shadow:
                    m['candidate'].append(shadow[0][0] / 1e6)
                    m['candidate_verdict'].append((shadow[0][1] - s.stamp_ns) / 1e6)
                else:
                    m['no_shadow_record'].append(1)
            if phase == CANARY and r.verdicts != 2:
                m['not_paired'].append(1)
            m['gate'].append(r.latency_ns / 1e6)
            if r.verdicts:
                m['verdict'].append((r.verdict_ns - s.stamp_ns) / 1e6)
                m['evaluation'].append(r.evaluation_ns / 1e6)
            if r.verdicts == 2:
                m['candidate'].append(r.candidate_evaluation_ns / 1e6)
                m['candidate_verdict'].append((r.candidate_verdict_ns - s.stamp_ns) / 1e6)
            if pid in robot.command_ns:
                m['command'].append(robot.command_ns[pid] / 1e6)
    return out


def length(stage: dict) -> str:
    """A stage's duration in s, from its start and end events, or '–'."""
    return (f'{(stage["end"] - stage["start"]) / 1e9:.1f}'
            if 'start' in stage and 'end' in stage else '–')


def rollout_table(run: Run) -> list[str]:
    lines = ['| release | outcome | push -> shadow starts (s) | shadow (s) | shadow samples | '
             'canary (s) | canary samples | push -> promoted (s) | push -> every Oracle runs '
             'it alone (s) | push -> every Gate decides on it alone (s) | proposals sent | '
             'without a decision |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in run.rollouts:
        sh, ca = r.stages.get('shadow', {}), r.stages.get('canary', {})
        lines.append(
            f'| {r.number} ({r.version}) | {r.outcome} | {secs(sh.get("start"), r.push_ns)} | '
            f'{length(sh)} | {sh.get("samples", "–")} | {length(ca)} | '
            f'{ca.get("samples", "–")} | {secs(r.promoted_ns, r.push_ns)} | '
            f'{secs(r.alone_ns, r.push_ns)} | {secs(r.decided_alone_ns, r.push_ns)} | '
            f'{r.sent} | {r.missing} |')
    return lines


def counts_line(run: Run) -> str:
    t = tally(run)

    def top(counter):
        return ', '.join(f'{reason_name(k)} {v}' for k, v in counter.most_common(4))
    return (f'{t.sent} proposals sent, {t.missing} without a PROPOSAL decision, '
            f'{t.duplicated} with more than one; after the warm-up ({t.measured}): '
            f'{t.not_approved} not approved' + (f' ({top(t.reasons)})' if t.reasons else '')
            + f', NO_VERDICT {t.no_verdict}, OVERLOAD {t.overload}'
            + (f'; warm-up (before approvals flowed on every robot): {top(t.warmup)}'
               if t.warmup else ''))


def reason_name(code: int) -> str:
    for name in dir(GateDecision):
        if name.startswith('REASON_') and getattr(GateDecision, name) == code:
            return name[len('REASON_'):]
    return str(code)


def run_line(run: Run) -> str:
    d = run.driver
    how = 'all at once' if run.all_at_once else 'one robot after another'
    each = ', '.join(f'{v:.1f}' for v in run.ready_s)
    return (f'{run.label}: {run.wall_s:.0f} s wall ({run.bring_up_s:.0f} s to bring the nodes '
            f'up, {how}; robot by robot {each} s); driver CPU '
            f'{100 * run.cpu_s / run.wall_s:.0f} % of one core; machine CPU busy '
            f'{100 * run.busy:.0f} %; load average {run.load[0]} at start, {run.load[1]} at '
            f'end; {d.ticks} ticks of the 50 Hz stream ({d.ticks * PERIOD:.0f} s), '
            f'{d.late_ticks} late by more than a period ({d.skipped_ticks} ticks skipped)')


def latency_table(run: Run) -> list[str]:
    data = phases(run)
    base = data[SINGLE]
    lines = ['| phase | proposals | Gate decision p50 (ms) | p99 (ms) | extra p50 (ms) | '
             'extra p99 (ms) | proposal -> cmd_vel p50 (ms) | p99 (ms) | extra p50 (ms) | '
             'extra p99 (ms) | no command |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for phase in PHASES:
        m = data[phase]
        if not m['proposals']:
            continue

        def extra(key, q):
            if phase == SINGLE:
                return '–'
            return ms(pct(m[key], q) - pct(base[key], q))
        lines.append(
            f'| {phase} | {len(m["proposals"])} | {ms(pct(m["gate"], 50))} | '
            f'{ms(pct(m["gate"], 99))} | {extra("gate", 50)} | {extra("gate", 99)} | '
            f'{ms(pct(m["command"], 50))} | {ms(pct(m["command"], 99))} | '
            f'{extra("command", 50)} | {extra("command", 99)} | '
            f'{len(m["proposals"]) - len(m["command"])} |')
    return lines


def segments_line(run: Run) -> str:
    """Gate decision p50 of each stretch of one phase, in the order they ran (the first robot),
    to show how much the machine drifted between phases."""
    robot, out, current, values = run.driver.robots[0], [], None, []

    def close():
        if current is not None and values:
            out.append(f'{current} {pct(values, 50):.2f}')
    for pid, s in robot.sent.items():          # in send order
        phase = robot.phase_at(s.published_ns) if s.record else None
        records = robot.decisions.get(pid)
        if phase is None or not records:
            continue
        if phase != current:
            close()
            current, values = phase, []
        values.append(records[0].latency_ns / 1e6)
    close()
    return ' -> '.join(out)


def oracle_table(runs: list[Run]) -> list[str]:
    lines = ['| robots | phase | proposals | Oracle evaluation p50 (ms) | p99 (ms) | '
             'proposal -> verdict p50 (ms) | p99 (ms) | candidate evaluation p50 (ms) | p99 (ms) '
             '| Gate decision p50 (ms) | p99 (ms) | no decision | NO_VERDICT | OVERLOAD | '
             'candidate verdict missing | driver stamp -> publish() returned p50 / p99 (ms) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for run in runs:
        data = phases(run)
        for phase in PHASES:
            m = data[phase]
            if not m['proposals']:
                continue
            unpaired = (len(m['no_shadow_record']) + len(m['not_paired'])
                        if phase != SINGLE else '–')
            lines.append(
                f'| {run.label} | {phase} | {len(m["proposals"])} | '
                f'{ms(pct(m["evaluation"], 50))} | {ms(pct(m["evaluation"], 99))} | '
                f'{ms(pct(m["verdict"], 50))} | {ms(pct(m["verdict"], 99))} | '
                f'{ms(pct(m["candidate"], 50))} | {ms(pct(m["candidate"], 99))} | '
                f'{ms(pct(m["gate"], 50))} | {ms(pct(m["gate"], 99))} | {len(m["missing"])} | '
                f'{len(m["no_verdict"])} | {len(m["overload"])} | '
                f'{unpaired} | {ms(pct(m["driver"], 50))} / {ms(pct(m["driver"], 99))} |')
    return lines


def fleet_table(runs: list[Run]) -> list[str]:
    lines = ['| robots | plan (min s / samples) | outcome | push -> shadow starts (s) | '
             'shadow (s) | canary (s) | push -> promoted (s) | push -> every Oracle runs it '
             'alone (s) | proposals sent (run) | without a decision | NO_VERDICT | OVERLOAD | '
             'machine CPU busy | bring-up (s) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for run in runs:
        t = tally(run)
        for r in run.rollouts:
            sh, ca = r.stages.get('shadow', {}), r.stages.get('canary', {})
            lines.append(
                f'| {run.label} | {brief(run.plan)} | {r.outcome} | '
                f'{secs(sh.get("start"), r.push_ns)} | {length(sh)} | {length(ca)} | '
                f'{secs(r.promoted_ns, r.push_ns)} | {secs(r.alone_ns, r.push_ns)} | {t.sent} | '
                f'{t.missing} | {t.no_verdict} | {t.overload} | {100 * run.busy:.0f} % | '
                f'{run.bring_up_s:.0f} |')
    return lines


# -- main ----------------------------------------------------------------------------------------

def progress(text: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {text}', file=sys.stderr, flush=True)


def wider_discovery(scratch: Path, peers: int) -> dict[str, str]:
    """The nodes' own UDP profile with maxInitialPeersRange ``peers``
    (flywheel.ros.transport.widened_profile): a participant on this host announces itself to
    the first ``peers`` participant ports only, so two participants both beyond that range never
    discover each other. Used by this process and every node."""
    from flywheel.ros.transport import widened_profile
    path = widened_profile(peers, scratch)
    env = node_env()
    # a profile of one's own: flywheel/ros/transport.py then leaves it alone, and the discovery
    # range must not be LOCALHOST (rmw_fastrtps would build its own transports)
    own = {'FASTDDS_DEFAULT_PROFILES_FILE': str(path),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SYSTEM_DEFAULT'}
    env.update(own)
    os.environ.update(own)
    return env


def leftovers(scratch: Path) -> list[int]:
    """Processes still running with this run's ROS_HOME (the nodes' own children included)."""
    mark = f'ROS_HOME={os.environ.get("ROS_HOME", "")}'.encode()
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / 'environ').read_bytes().split(b'\0'):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: a tiny plan, a few seconds per phase, fleets of 1 and 3')
    parser.add_argument('--parts', default='rollout,fleet',
                        help='rollout (parts 1-2, one robot), fleet (part 3); default both')
    parser.add_argument('--robots', help='fleet sizes, comma-separated (default 1,3; more than '
                        'about 7 robots need --peers-range)')
    parser.add_argument('--cycles', type=int, help='releases rolled out one after the other in '
                        'part 1-2 (default 2; --quick: 1)')
    parser.add_argument('--single', type=float, help='seconds of single-release operation '
                        'before and after each rollout (default 30 in part 1-2, 10 in fleets; '
                        '--quick: 3)')
    parser.add_argument('--audit', action='store_true',
                        help='also run an audit node per robot (it records every decision)')
    parser.add_argument('--all-at-once', action='store_true',
                        help='start every robot\'s nodes at once, as `flywheel up --robots N` '
                        'does (default: governance, then the robots one by one)')
    parser.add_argument('--transition-timeout', type=float, default=60.0, metavar='S',
                        help='lifecycle_manager transition_timeout for every manager started '
                        '(default 60; the node default, 15 s, is too short for 10 robots to '
                        'discover each other\'s services on 2 cores)')
    parser.add_argument('--heartbeat-timeout', type=float, default=10.0, metavar='S',
                        help='lifecycle_manager heartbeat_timeout, the longest a node may go '
                        'without answering get_state (default 10; governance can be silent for '
                        'seconds while 10 robots come up on 2 cores, and its manager then takes '
                        'the graph down)')
    parser.add_argument('--peers-range', type=int, metavar='K',
                        help='run every node (and this driver) on a copy of the nodes\' UDP '
                        'profile announcing to K participant ports instead of its 32: beyond '
                        'the 32nd participant on a host (about 7 robots) discovery fails')
    parser.add_argument('--params', type=Path, default=package_config_dir() / 'flywheel.yaml')
    args = parser.parse_args(argv)
    parts = set(args.parts.split(','))
    if not parts <= {'rollout', 'fleet'}:
        parser.error(f'--parts: unknown {sorted(parts - {"rollout", "fleet"})}')
    sizes = [int(n) for n in (args.robots or '1,3').split(',')]
    if any(n < 1 for n in sizes):
        parser.error('--robots: sizes must be >= 1')
    cycles = args.cycles or (1 if args.quick else 2)
    single = args.single if args.single is not None else (3.0 if args.quick else None)
    tiny = shortened(2.0, 50, 60.0)
    rollout_plan = tiny if args.quick else None                 # None: config/rollout.yaml
    fleet_plan = tiny if args.quick else shortened(10.0, 250, 120.0)

    sys.setswitchinterval(0.001)      # the sender thread waits less behind the receiver
    load_start = load()
    children = Children()             # SIGTERM/SIGHUP become KeyboardInterrupt: graphs stop
    keys = provision_keys()
    scratch = Path(tempfile.mkdtemp(prefix='flywheel-bench-rollout-'))
    progress(f'scratch in {scratch}; ROS domain {os.environ["ROS_DOMAIN_ID"]}')
    args.env = node_env() if args.peers_range is None else wider_discovery(scratch,
                                                                             args.peers_range)
    context = Context()
    rclpy.init(context=context, args=[])
    runs: dict[str, Run] = {}
    fleet_runs: list[Run] = []
    failed: dict[int, str] = {}
    seq = 0
    try:
        if 'rollout' in parts:
            run = run_graph('one robot', [''], rollout_plan, cycles,
                            single if single is not None else 30.0, True, args, keys, scratch,
                            context, seq)
            runs['rollout'] = run
            seq = run.driver.seq
        if 'fleet' in parts:
            for n in sizes:
                try:
                    run = run_graph(f'{n}', robot_namespaces(n), fleet_plan, 1,
                                    single if single is not None else 10.0, False, args, keys,
                                    scratch, context, seq)
                except RuntimeError as exc:      # e.g. too many robots to come up: say so
                    progress(f'{n} robots: {exc}')
                    failed[n] = str(exc)
                    continue
                fleet_runs.append(run)
                seq = run.driver.seq
    finally:
        context.try_shutdown()
        children.close()
        stray = leftovers(scratch)
        for pid in stray:               # started by this run (its ROS_HOME): ended by PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if stray:
            progress(f'ended {len(stray)} stray process(es) of this run: {stray}')

    print(f'machine: {machine()}')
    print(f'command: {command_line()}')
    transport = (TRANSPORT if args.peers_range is None else
                 f'the nodes\' own UDP-only profile with maxInitialPeersRange {args.peers_range} '
                 'instead of 32 (--peers-range)')
    print(f'transport: UDP only (nodes and driver: {transport}); load average at start '
          f'{load_start}, at end {load()}')
    print(f'{RATE:.0f} Hz signed 20-point proposals per robot (this driver stands in for the '
          'proposer and the base); governance, Oracle, Gate' + (', audit' if args.audit else '')
          + ' as separate processes with their lifecycle managers (`flywheel up --with '
          'governance`; every lifecycle manager with transition_timeout '
          f'{args.transition_timeout:g} s and heartbeat_timeout {args.heartbeat_timeout:g} s '
          '(node defaults 15 s and 4 s), ' + ('every node started at once' if args.all_at_once
                                                else 'governance first, then the robots one by '
                                                'one') + '); releases differ only in their '
          'version, signed 1-of-1 by this run\'s operator key')
    ok = True
    if 'rollout' in runs:
        run = runs['rollout']
        t = tally(run)
        ok &= t.missing == t.duplicated == 0
        print(f'\n### Push -> full, one robot\n\nplan: {describe(run.plan)} '
              f'({run.plan_source})\n')
        print('\n'.join(rollout_table(run)))
        print(f'\n{counts_line(run)}\n{run_line(run)}')
        print('\n### Decision latency by phase, one robot (same run)\n')
        print('Gate decision: GateDecision.latency (proposal stamp -> decision, by the Gate); '
              'proposal -> cmd_vel: DDS reception here of the first command with the proposal\'s '
              'linear.x - wall clock before publish(). Extra: minus the single-release phase. '
              'Proposals within 0.3 s before / 1 s after a stage change or a change of what the '
              'Oracle scores with are left out.\n')
        print('\n'.join(latency_table(run)))
        data = phases(run)
        for phase in (SHADOW, CANARY):
            if data[phase]['gate'] and data[SINGLE]['gate']:
                extra = pct(data[phase]['gate'], 50) - pct(data[SINGLE]['gate'], 50)
                print(f'\n{phase}: extra Gate decision latency at p50 {extra:.2f} ms (target '
                      f'<= {TARGET_EXTRA_P50_MS:g} ms: '
                      f'{"met" if extra <= TARGET_EXTRA_P50_MS else "MISSED"})', end='')
        print(f'\n\nGate decision p50 (ms) of each phase in the order they ran: '
              f'{segments_line(run)}')
        print('\nwhere it goes (one robot):\n')
        print('\n'.join(oracle_table([run])))
    if fleet_runs or failed:
        ok &= not failed
        for run in fleet_runs:
            t = tally(run)
            ok &= t.missing == t.duplicated == 0
        print('\n### Fleets on this machine (`flywheel up --robots N --with governance --only '
              'oracle,gate`)\n')
        if fleet_runs:
            print(f'plan: {describe(fleet_runs[0].plan)} ({fleet_runs[0].plan_source})\n')
            print('\n'.join(fleet_table(fleet_runs)))
            print('\nlatency by phase, pooled over the robots (in canary only the first '
                  f'{fleet_runs[0].plan.canary_robots} robot(s) enforce the candidate; the '
                  'others shadow it):\n')
            print('\n'.join(oracle_table(fleet_runs)))
            print()
        for run in fleet_runs:
            ends = '; '.join(f'release {r.number} {r.outcome}' + (f' ({r.reason})' if r.reason
                                                                   else '')
                             for r in run.rollouts)
            print(f'- N={run_line(run)}; {counts_line(run)}; {ends}')
        for n, why in failed.items():
            print(f'- N={n}: no measurement: {why}')
    print(f'\nevery proposal got exactly one PROPOSAL decision: {"yes" if ok else "NO"}')
    return 0 if ok else 1


if __name__ == '__main__':
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print('interrupted: every process this benchmark started is stopped', file=sys.stderr)
        raise SystemExit(130)
