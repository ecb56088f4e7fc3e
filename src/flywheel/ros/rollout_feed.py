"""The Gate's records as the rollout analysis reads them (flywheel.release.rollout.Observation).

In canary a PROPOSAL decision carries both verdicts, each with the action it alone leads to: one
observation. In shadow the active release's PROPOSAL decision and the candidate's SHADOW record
arrive separately, in either order: they are paired by proposal id (a bounded memory each way).
"""
from __future__ import annotations

from collections import OrderedDict

from alignment_flywheel.msg import GateDecision, SafetySignals as SignalsMsg
from flywheel.enforcement.decision import Action, Reason
from flywheel.release.rollout import Observation, Stage
from flywheel.ros.convert import from_time

MEMORY = 2048
_ERRORS = {SignalsMsg.EVIDENCE_INPUT_REJECTED}


def _reasons(codes) -> tuple[Reason, ...]:
    return tuple(Reason(c) for c in codes if c in Reason._value2member_map_)


def _error(signals: SignalsMsg) -> bool:
    return signals.evidence_status in _ERRORS or any(
        e.rule_id.startswith('internal:') for e in signals.evidence)


class RolloutFeed:
    def __init__(self, candidate_version: str, stage: Stage, robot: str = ''):
        self.candidate_version, self.stage, self.robot = candidate_version, stage, robot
        self._active: OrderedDict[str, GateDecision] = OrderedDict()
        self._shadow: OrderedDict[str, GateDecision] = OrderedDict()

    def observe(self, d: GateDecision) -> Observation | None:
        """The observation this record completes, if any."""
        if not self.candidate_version:
            return None
        if d.subject == GateDecision.SUBJECT_PROPOSAL and len(d.signals) == 2:
            active, candidate = d.signals
            if candidate.oracle_version != self.candidate_version:
                return None
            return self._observation(Action(d.signal_actions[0]), Action(d.signal_actions[1]),
                                     (), d.reasons, candidate)
        if d.subject == GateDecision.SUBJECT_SHADOW:
            if not d.signals or d.signals[0].oracle_version != self.candidate_version:
                return None
            active = self._active.pop(d.proposal_id, None)
            if active is None:
                return self._remember(self._shadow, d)
            return self._pair(active, d)
        if d.subject == GateDecision.SUBJECT_PROPOSAL and len(d.signals) == 1:
            shadow = self._shadow.pop(d.proposal_id, None)
            if shadow is None:
                return self._remember(self._active, d)
            return self._pair(d, shadow)
        return None

    def _pair(self, active: GateDecision, shadow: GateDecision) -> Observation:
        return self._observation(Action(active.action), Action(shadow.action), active.reasons,
                                 shadow.reasons, shadow.signals[0])

    def _observation(self, active_action, candidate_action, active_reasons, candidate_reasons,
                     candidate: SignalsMsg) -> Observation:
        return Observation(active_action, candidate_action, _reasons(candidate_reasons),
                           _reasons(active_reasons),
                           from_time(candidate.evaluation_duration) * 1e-9, _error(candidate),
                           self.stage, self.robot)

    @staticmethod
    def _remember(memory: OrderedDict, d: GateDecision) -> None:
        memory[d.proposal_id] = d
        while len(memory) > MEMORY:
            memory.popitem(last=False)
        return None
