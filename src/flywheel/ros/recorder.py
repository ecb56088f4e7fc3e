"""Recorder: watches a running graph and fills a RunRecord (for the demo and the tests)."""
from __future__ import annotations

from collections import OrderedDict

from nav_msgs.msg import Odometry
from rclpy.node import Node

from alignment_flywheel.msg import GateDecision, Incident
from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.enforcement.decision import Action, Reason
from flywheel.report import RunRecord
from flywheel.ros import qos, topics

PATH_SPACING = 0.05  # m between recorded path points
EARLY_LIMIT = 1000   # decisions kept waiting for their proposal (older ones are for proposals
                     # published before the record started, never to come)


class Recorder(Node):
    """Counts decisions only for proposals it saw itself, so a subscription that matched a little
    late never makes the numbers disagree.

    Gated, the count starts (`connected`) at the first decision on a proposal: the Gate has then
    matched the Proposer. Proposals published before that never reached the Gate and are not its
    to decide; as the Proposer's stream is in order, they are the ones older (epoch, seq) than the
    first proposal decided, and `finish()` takes them out of the count. The decision and the
    proposal come from different processes, so a decision can arrive first (seen on a loaded
    machine): it waits in `early` until its proposal comes. After `close()` no new proposal is
    counted, and `undecided` says how many counted ones still wait for their decision.
    Bypassed, the count starts at the first proposal."""

    def __init__(self, record: RunRecord, gated: bool, **kwargs):
        super().__init__('recorder', **kwargs)
        self.record = record
        self.gated = gated
        self.connected = False
        self.closed = False
        self.first_odom_ns: int | None = None
        self.pending: dict[str, tuple[tuple[int, int], list]] = {}  # id -> ((epoch, seq), path)
        self.first_decided: tuple[int, int] | None = None
        self.early: OrderedDict[str, GateDecision] = OrderedDict()
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.STREAM)
        self.create_subscription(GateDecision, topics.GATE_DECISIONS, self.on_decision,
                                 qos.STREAM)
        self.create_subscription(Incident, topics.INCIDENTS, self.on_incident, qos.STREAM)
        self.create_subscription(Odometry, topics.ODOM, self.on_odom, qos.SENSOR)

    def restart(self) -> None:
        """Count from now on; the path so far is kept. Early decisions are kept too: one that
        came just before may be for a proposal still on its way."""
        self.record = RunRecord(self.record.mode, path=self.record.path)
        self.pending.clear()
        self.first_decided = None

    def close(self) -> None:
        """Stop counting proposals; decisions for the ones counted are still taken."""
        self.closed = True

    def _awaited(self) -> list[str]:
        """Counted proposals still without a decision that the Gate did receive."""
        return [i for i, (key, _) in self.pending.items()
                if self.first_decided is None or key >= self.first_decided]

    @property
    def undecided(self) -> int:
        return len(self._awaited()) if self.gated else 0

    def finish(self) -> None:
        """Close the record: proposals older than the first one decided never reached the Gate
        and leave the count; the rest still without a decision are `undecided`."""
        self.close()
        if not self.gated:
            return
        awaited = set(self._awaited())
        self.record.proposals -= len(self.pending) - len(awaited)
        self.record.undecided = len(awaited)

    def on_proposal(self, msg: ProposalMsg) -> None:
        if self.closed:
            return
        self.connected = self.connected or not self.gated
        self.record.proposals += 1
        key = (msg.epoch, msg.seq)
        trajectory = [(p.pose.position.x, p.pose.position.y) for p in msg.trajectory]
        decision = self.early.pop(msg.proposal_id, None)
        if decision is None:
            self.pending[msg.proposal_id] = (key, trajectory)
        else:
            self._count(decision, key, trajectory)

    def on_decision(self, msg: GateDecision) -> None:
        if msg.subject != GateDecision.SUBJECT_PROPOSAL:
            return          # verdicts, shadow verdicts and verifications are not the proposal's
        self.connected = True
        seen = self.pending.pop(msg.proposal_id, None)
        if seen is not None:
            self._count(msg, *seen)
        elif not self.closed:
            self.early[msg.proposal_id] = msg
            if len(self.early) > EARLY_LIMIT:
                self.early.popitem(last=False)

    def _count(self, decision: GateDecision, key: tuple[int, int], trajectory: list) -> None:
        if self.first_decided is None or key < self.first_decided:
            self.first_decided = key
        action = Action(decision.action)
        self.record.actions[action.name] += 1
        for reason in decision.reasons:
            self.record.reasons[Reason(reason).name] += 1
        if not action.approves and trajectory:
            self.record.blocked.append(trajectory)

    def on_incident(self, msg: Incident) -> None:
        entry = (msg.object_id, msg.position.x, msg.position.y)
        if msg.severity == Incident.SEVERITY_COLLISION:
            self.record.collisions.append(entry)
        elif msg.severity == Incident.SEVERITY_NEAR_MISS:
            self.record.near_misses.append(entry)

    def on_odom(self, msg: Odometry) -> None:
        if self.first_odom_ns is None:
            self.first_odom_ns = self.get_clock().now().nanoseconds
        xy = (msg.pose.pose.position.x, msg.pose.pose.position.y)
        path = self.record.path
        if not path or (xy[0] - path[-1][0]) ** 2 + (xy[1] - path[-1][1]) ** 2 >= PATH_SPACING ** 2:
            path.append(xy)

