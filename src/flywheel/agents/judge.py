"""Judge: a proposal decided the way the robot would decide it, the Oracle release scoring and the
Gate's risk policy choosing the action (flywheel.enforcement.policy), as the release's regression
suite is run (flywheel.release.regression.run_suite)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from flywheel.enforcement.decision import Action, most_restrictive
from flywheel.enforcement.policy import RiskPolicy
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import OracleSpec
from flywheel.proposal import Proposal, ProposalLimits
from flywheel.release.regression import MAX_DT, MAX_POINTS, SUITE_PROPOSER
from flywheel.signals import SafetySignals


@dataclass(frozen=True)
class Judgement:
    """``action``: what the Gate decides; ``unescalated``: what it would decide were uncertainty
    never escalated (what lifting an escalation, e.g. by raising audit coverage, would let
    through)."""

    action: Action
    unescalated: Action
    signals: SafetySignals


class Judge:
    """One Oracle release and one risk policy; cases carry SUITE_PROPOSER as their proposer."""

    def __init__(self, spec: OracleSpec, policy: RiskPolicy):
        self.spec, self.policy = spec, policy
        self.quiet = dataclasses.replace(policy, escalate_on_uncertainty=False)
        self.oracle = Oracle(spec, ProposalLimits(
            frame_id=spec.frame_id, max_points=MAX_POINTS, allowed_proposers=(SUITE_PROPOSER,),
            max_sample_gap=MAX_DT))

    def __call__(self, proposal: Proposal) -> Judgement:
        signals = self.oracle.evaluate(proposal)
        action, _ = most_restrictive(self.policy.assess(signals))
        quiet, _ = most_restrictive(self.quiet.assess(signals))
        return Judgement(action, quiet, signals)

    def action(self, proposal: Proposal) -> Action:
        return most_restrictive(self.policy.assess(self.oracle.evaluate(proposal)))[0]
