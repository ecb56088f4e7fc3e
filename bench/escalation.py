"""Escalation over real DDS: what asking the verifier costs, and how long an escalated proposal
keeps the robot stopped when the answer is safe.

1. verifier service: this driver calls a verifier process's ~/verify (the shipped warehouse
   spec, 20 incident regions heard on `incidents`) with signed proposals from free starts, one
   call at a time: the round trip seen by the caller (request out -> answer in), the node's own
   answer time (`elapsed`: decode, check, sign) and how many answers missed the 50 ms deadline
   (TIMEOUT: unsafe). Target (issue 12): verifier p99 <= 50 ms.
2. escalation round trip: a Gate and a verifier process; the driver publishes a proposal and an
   escalating verdict (the Oracle core's, coverage uncertainty above its threshold, signed), then
   measures from the verdict's publish to the Gate's VERIFICATION record (safe: ALLOW) and to the
   first non-zero cmd_vel, and inside the Gate, from its ESCALATE record to its VERIFICATION record
   (both stamped on its clock). Each round starts from a stopped robot.

    scripts/run.sh python bench/escalation.py [--calls 1000] [--rounds 100] [--hog]
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import threading
import time
from array import array
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (HEADER, Children, CpuHog, command_line, isolate_ros, load,  # noqa: E402
                    machine, node_env, provision_keys, row, stats_ms)

transport = isolate_ros()
KEYS = provision_keys()

import rclpy  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from alignment_flywheel.msg import GateDecision, Incident  # noqa: E402
from alignment_flywheel.msg import Proposal as ProposalMsg  # noqa: E402
from alignment_flywheel.msg import SafetySignals as SignalsMsg  # noqa: E402
from alignment_flywheel.srv import Verify  # noqa: E402
from flywheel.auth import load_message_key  # noqa: E402
from flywheel.cli.graph import Graph  # noqa: E402
from flywheel.oracle.oracle import Oracle  # noqa: E402
from flywheel.oracle.spec import load_spec  # noqa: E402
from flywheel.proposal import ProposalLimits  # noqa: E402
from flywheel.ros import qos, topics  # noqa: E402
from flywheel.ros.convert import from_time, signals_to_msg, to_time  # noqa: E402
from flywheel.ros.params import package_config_dir  # noqa: E402
from flywheel.verify.verifier import VerifyReason  # noqa: E402
from flywheel.wire import decode_proposal, encode_proposal  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test.helpers import straight  # noqa: E402

CONFIG = package_config_dir()
START = (1.5, 1.0, 0.0)
# free starts of the warehouse (shelves at x 4-5 and 8-9, y 2.5-5.5; the bay at x 5.6-7.4, y 3-5)
STARTS = [(1.5, 1.0, 0.0), (2.0, 7.0, 0.0), (10.5, 1.5, 1.57), (3.0, 2.0, 0.8),
          (6.0, 6.5, -0.2), (10.0, 6.0, 3.14), (2.5, 5.0, -1.2)]
# recorded incidents, mostly off those paths (an answer stopped at an incident region is cheap)
INCIDENTS = ([(0.6, y) for y in (2.0, 3.0, 4.0, 5.0, 6.0)] + [(11.6, y) for y in (2.5, 3.5, 4.5,
                                                                            5.5, 6.5)]
             + [(x, 7.7) for x in (4.0, 5.0, 6.0, 7.0, 8.0)] + [(x, 4.0) for x in (6.0, 6.5, 7.0,
                                                                               6.3, 7.3)])


class Driver:
    def __init__(self):
        self.node = rclpy.create_node('bench_escalation')
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.proposer = load_message_key(KEYS / 'proposer.pem')
        self.oracle_key = load_message_key(KEYS / 'oracle.pem')
        self.epoch, self.seq = time.time_ns(), 0

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def spin_until(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.001)
        return True

    def proposal(self, x, y, yaw, v, w=0.0):
        self.seq += 1
        p = dataclasses.replace(straight(x, y, yaw, v, w=w, seq=self.seq,
                                         stamp_ns=self.now_ns()), epoch=self.epoch)
        raw = encode_proposal(p, self.proposer)
        return decode_proposal(raw), raw


def verifier_service(driver: Driver, calls: int, rng) -> dict:
    client = driver.node.create_client(Verify, '/verifier/verify')
    assert client.wait_for_service(timeout_sec=60.0), 'no verifier'
    incidents = driver.node.create_publisher(Incident, topics.INCIDENTS, qos.STREAM)
    assert driver.spin_until(lambda: incidents.get_subscription_count() > 0, 30.0)
    for i, (x, y) in enumerate(INCIDENTS):
        msg = Incident(incident_id=f'bench/{i}', severity=Incident.SEVERITY_NEAR_MISS,
                       reporter='bench', distance=0.1)
        msg.header.stamp, msg.header.frame_id = to_time(driver.now_ns()), 'map'
        msg.position.x, msg.position.y = x, y
        incidents.publish(msg)
    round_trip, elapsed, safe, reasons = [], [], [], {}
    for k in range(calls + 20):
        x, y, yaw = STARTS[k % len(STARTS)]
        p, raw = driver.proposal(x, y, yaw + rng.uniform(-0.3, 0.3), rng.uniform(0.2, 0.8),
                                 rng.uniform(-0.3, 0.3))
        request = Verify.Request(proposal=array('B', raw), proposal_digest=p.digest, hold=0.32)
        sent = time.perf_counter()
        future = client.call_async(request)
        assert driver.spin_until(future.done, 5.0), 'no answer'
        took = time.perf_counter() - sent
        answer = future.result().answer
        if k < 20:                        # warm-up (and the incidents reach the knowledge)
            continue
        round_trip.append(took)
        elapsed.append(from_time(answer.elapsed) * 1e-9)
        if answer.safe:
            safe.append(elapsed[-1])
        name = VerifyReason(answer.reason).name
        reasons[name] = reasons.get(name, 0) + 1
    driver.node.destroy_client(client)
    return {'round_trip': stats_ms(round_trip), 'elapsed': stats_ms(elapsed),
            'safe': stats_ms(safe) if safe else None, 'reasons': reasons}


def escalation_round_trip(driver: Driver, rounds: int) -> dict:
    spec = load_spec(CONFIG / 'oracle_spec.yaml')
    oracle = Oracle(spec, ProposalLimits())
    proposals = driver.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    verdicts = driver.node.create_publisher(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM)
    odom_pub = driver.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
    records: list = []
    commands: list = []
    driver.node.create_subscription(GateDecision, topics.GATE_DECISIONS,
                                    lambda m: records.append((time.perf_counter(), m)),
                                    qos.RECORDS)
    driver.node.create_subscription(Twist, topics.CMD_VEL,
                                    lambda m: commands.append((time.perf_counter(), m)),
                                    qos.COMMAND)
    stop = threading.Event()

    def feed():
        while not stop.wait(0.02):
            msg = Odometry()
            msg.header.stamp, msg.header.frame_id = to_time(driver.now_ns()), 'map'
            msg.pose.pose.position.x, msg.pose.pose.position.y = START[0], START[1]
            msg.pose.pose.orientation.w = 1.0
            odom_pub.publish(msg)
    threading.Thread(target=feed, daemon=True).start()
    verdict_seq = 0

    def moving(m) -> bool:
        return m.linear.x != 0.0 or m.angular.z != 0.0

    def of(p, subject):
        return [(t, m) for t, m in records if m.proposal_id == p.proposal_id
                and m.subject == subject]
    try:
        assert driver.spin_until(lambda: proposals.get_subscription_count() > 0
                                 and verdicts.get_subscription_count() > 0 and commands, 30.0)
        to_record, to_command, inside, outcomes = [], [], [], {}
        for k in range(rounds + 5):
            # from a stopped robot: the last approval expired, stop on cmd_vel
            driver.spin_until(lambda: commands and not moving(commands[-1][1]), 2.0)
            p, raw = driver.proposal(*START, 0.5)
            proposals.publish(raw)
            verdict_seq += 1
            v = dataclasses.replace(oracle.evaluate(p), stamp_ns=driver.now_ns(),
                                    epoch=driver.epoch, seq=verdict_seq,
                                    coverage_uncertainty=0.9)
            v = dataclasses.replace(v, key_id=driver.oracle_key.key_id,
                                    signature=driver.oracle_key.sign(v.canonical_bytes()))
            msg = signals_to_msg(v, 'map')
            sent = time.perf_counter()
            verdicts.publish(msg)
            if not driver.spin_until(
                    lambda: of(p, GateDecision.SUBJECT_VERIFICATION), 5.0):
                raise AssertionError(f'no verification record for {p.proposal_id}')
            t_rec, rec = of(p, GateDecision.SUBJECT_VERIFICATION)[0]
            outcomes[rec.action] = outcomes.get(rec.action, 0) + 1
            ok = rec.action == GateDecision.ACTION_ALLOW
            first = None
            if ok:
                driver.spin_until(lambda: any(moving(m) for t, m in commands if t > sent), 2.0)
                first = next((t for t, m in commands if t > sent and moving(m)), None)
            escalated = of(p, GateDecision.SUBJECT_PROPOSAL)
            if k < 5 or not ok or first is None or not escalated:
                continue
            to_record.append(t_rec - sent)
            to_command.append(first - sent)
            inside.append((from_time(rec.header.stamp)
                           - from_time(escalated[0][1].header.stamp)) * 1e-9)
            # let the approval run out before the next round
            driver.spin_until(lambda: False, 0.35)
        return {'to_record': stats_ms(to_record), 'to_command': stats_ms(to_command),
                'inside': stats_ms(inside),
                'outcomes': {('ALLOW' if a == GateDecision.ACTION_ALLOW else f'action {a}'): n
                             for a, n in outcomes.items()}}
    finally:
        stop.set()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--calls', type=int, default=1000, help='verifier service calls')
    ap.add_argument('--rounds', type=int, default=100, help='escalation round trips')
    ap.add_argument('--hog', action='store_true', help='with a busy-looping process per core')
    args = ap.parse_args(argv)
    children = Children()
    rclpy.init()
    rng = np.random.default_rng(12)
    graph = Graph(('verifier', 'gate'), CONFIG / 'flywheel.yaml',
                  {'verifier': {'ledger_path': str(KEYS.parent / 'none.sqlite')}}, node_env())
    driver = Driver()
    try:
        graph.start()
        with (CpuHog(children) if args.hog else contextlib.nullcontext()):
            service = verifier_service(driver, args.calls, rng)
            escalation = escalation_round_trip(driver, args.rounds)
    finally:
        graph.stop()
        children.close()
        driver.node.destroy_node()
        rclpy.try_shutdown()
    print(f'# escalation ({command_line()})\n\n{machine()}; load {load()}; {transport}'
          + ('; a busy-looping process per core' if args.hog else '') + '\n')
    print(HEADER)
    print(row('verifier service: caller round trip', service['round_trip']))
    print(row('verifier service: answer time in the node (decode, check, sign)',
              service['elapsed']))
    if service['safe']:
        print(row('verifier service: answer time, safe answers only (every placement checked)',
                  service['safe']))
    print(row('escalation: verdict published -> VERIFICATION record', escalation['to_record']))
    print(row('escalation: verdict published -> first non-zero cmd_vel',
              escalation['to_command']))
    print(row("escalation: inside the Gate, ESCALATE -> VERIFICATION", escalation['inside']))
    print(f'\nverifier answers: {service["reasons"]}; escalations: {escalation["outcomes"]}')
    p99 = service['elapsed']['p99']
    print(f'verifier p99 {p99:.2f} ms: {"within" if p99 <= 50.0 else "OVER"} the 50 ms target')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
