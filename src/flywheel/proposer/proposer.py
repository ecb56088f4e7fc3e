"""The Proposer core: asks the planner, injects faults, numbers and stamps the result.

Every run of a Proposer is an epoch (its wall-clock start time, ns) and numbers its proposals
1, 2, ... within it: a restarted Proposer has a newer epoch, so the Gate's replay check never
mistakes it for a replay, and (epoch, seq) names each proposal exactly once.
"""
from __future__ import annotations

from flywheel.kinematics import RobotState
from flywheel.proposal import Proposal, make_proposal
from flywheel.proposer.faults import Fault, FaultInjector
from flywheel.proposer.planner import Planner


class Proposer:
    def __init__(self, proposer_id: str, planner: Planner, frame_id: str, epoch: int,
                 faults: FaultInjector | None = None):
        self.proposer_id = proposer_id
        self.planner = planner
        self.frame_id = frame_id
        self.faults = faults
        self.epoch = epoch
        self.seq = 0
        self.last_fault: Fault | None = None

    def propose(self, state: RobotState, now_ns: int) -> Proposal:
        fault = self.faults.current(now_ns * 1e-9) if self.faults else None
        plan = self.planner.plan(state, shortcut=fault is Fault.SHORTCUT)
        if self.faults:
            plan = self.faults.corrupt(plan, fault)
        self.last_fault = fault
        self.seq += 1
        return make_proposal(f'{self.proposer_id}/{self.epoch}/{self.seq}', self.proposer_id,
                             self.seq, self.frame_id, now_ns,
                             (plan.times * 1e9).round().astype('int64'), plan.states,
                             plan.command, self.epoch)
