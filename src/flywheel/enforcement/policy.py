"""RiskPolicy: the explicit, versioned mapping from SafetySignals to an action.

Every threshold is named in the YAML (config/policy.yaml is the schema). Each rule that fires adds a
Finding; the most restrictive action wins. Signals that are not finite, or risks outside [0, 1],
are themselves a finding (FALLBACK), so a corrupted verdict can never read as safe.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from flywheel.enforcement.decision import Action, Finding, Reason
from flywheel.errors import SpecError
from flywheel.signals import EvidenceStatus, SafetySignals
from flywheel.yamldoc import load_yaml, mapping, number, text


@dataclass(frozen=True)
class Degrade:
    """How DEGRADE limits a command: both velocities scaled by ONE factor, the largest that is at
    most speed_scale and keeps |v| <= max_linear and |w| <= max_angular.

    One factor keeps w/v, so the robot follows the very arc the Oracle scored, only slower;
    clamping v and w separately would bend it onto an arc nobody scored.
    """

    speed_scale: float
    max_linear: float
    max_angular: float

    def apply(self, v: float, w: float) -> tuple[float, float]:
        k = self.speed_scale
        if abs(v) > 0.0:
            k = min(k, self.max_linear / abs(v))
        if abs(w) > 0.0:
            k = min(k, self.max_angular / abs(w))
        return v * k, w * k


@dataclass(frozen=True)
class RiskPolicy:
    version: str
    block_collision_risk: float
    degrade_collision_risk: float
    block_constraint_risk: float
    degrade_constraint_risk: float
    block_safety_score_below: float
    fallback_time_to_collision: float
    escalate_on_uncertainty: bool
    degrade: Degrade

    def __post_init__(self):
        if self.degrade_collision_risk > self.block_collision_risk:
            raise SpecError('degrade_collision_risk', 'must not exceed block_collision_risk')
        if self.degrade_constraint_risk > self.block_constraint_risk:
            raise SpecError('degrade_constraint_risk', 'must not exceed block_constraint_risk')

    def assess(self, s: SafetySignals) -> list[Finding]:
        """Every rule that fires for these signals (empty: within policy)."""
        values = (s.safety_score, s.collision_risk, s.constraint_risk, s.prediction_uncertainty,
                  s.prediction_uncertainty_threshold, s.coverage_uncertainty,
                  s.coverage_uncertainty_threshold)
        if not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in values) or math.isnan(
                s.time_to_collision) or math.isnan(s.min_clearance):
            return [Finding(Action.FALLBACK, Reason.INTERNAL_ERROR,
                            f'signals out of range: {values}')]
        if s.evidence_status == EvidenceStatus.INPUT_REJECTED:
            return [Finding(Action.BLOCK, Reason.INPUT_REJECTED_BY_ORACLE,
                            ', '.join(e.rule_id for e in s.evidence))]
        if s.evidence_status == EvidenceStatus.SHED:
            return [Finding(Action.BLOCK, Reason.OVERLOAD, 'the Oracle was overloaded and shed '
                            'this proposal unscored')]
        if s.evidence_status not in (EvidenceStatus.NONE, EvidenceStatus.COMPLETE,
                                     EvidenceStatus.TRUNCATED):
            return [Finding(Action.FALLBACK, Reason.INTERNAL_ERROR,
                            f'evidence status {s.evidence_status!r} outside the contract')]
        found = []
        if s.collision_risk >= self.block_collision_risk:
            found.append(Finding(Action.BLOCK, Reason.COLLISION_RISK,
                                 f'collision_risk={s.collision_risk:.3f}'))
        elif s.collision_risk >= self.degrade_collision_risk:
            found.append(Finding(Action.DEGRADE, Reason.COLLISION_RISK,
                                 f'collision_risk={s.collision_risk:.3f}'))
        if s.constraint_risk >= self.block_constraint_risk:
            found.append(Finding(Action.BLOCK, Reason.CONSTRAINT_RISK,
                                 f'constraint_risk={s.constraint_risk:.3f}'))
        elif s.constraint_risk >= self.degrade_constraint_risk:
            found.append(Finding(Action.DEGRADE, Reason.CONSTRAINT_RISK,
                                 f'constraint_risk={s.constraint_risk:.3f}'))
        if s.safety_score < self.block_safety_score_below:
            found.append(Finding(Action.BLOCK, Reason.LOW_SAFETY_SCORE,
                                 f'safety_score={s.safety_score:.3f}'))
        if s.time_to_collision < self.fallback_time_to_collision:
            found.append(Finding(Action.FALLBACK, Reason.TIME_TO_COLLISION,
                                 f'time_to_collision={s.time_to_collision:.3f}s'))
        if self.escalate_on_uncertainty:
            if s.prediction_uncertainty > s.prediction_uncertainty_threshold:
                found.append(Finding(Action.ESCALATE, Reason.PREDICTION_UNCERTAINTY,
                                     f'u={s.prediction_uncertainty:.3f} > '
                                     f'{s.prediction_uncertainty_threshold:.3f}'))
            if s.coverage_uncertainty > s.coverage_uncertainty_threshold:
                found.append(Finding(Action.ESCALATE, Reason.COVERAGE_UNCERTAINTY,
                                     f'c_a={s.coverage_uncertainty:.3f} > '
                                     f'{s.coverage_uncertainty_threshold:.3f}'))
        return found


_KEYS = {'version', 'thresholds', 'degrade'}
_THRESHOLDS = {'block_collision_risk', 'degrade_collision_risk', 'block_constraint_risk',
               'degrade_constraint_risk', 'block_safety_score_below',
               'fallback_time_to_collision', 'escalate_on_uncertainty'}


def load_policy(path: str | Path) -> RiskPolicy:
    return parse_policy(load_yaml(path))


def parse_policy(doc: dict) -> RiskPolicy:
    doc = mapping(doc, 'policy', allowed=_KEYS, required=_KEYS)
    th = mapping(doc['thresholds'], 'thresholds', allowed=_THRESHOLDS, required=_THRESHOLDS)
    unit = {'lo': 0.0, 'hi': 1.0}
    escalate = th['escalate_on_uncertainty']
    if not isinstance(escalate, bool):
        raise SpecError('thresholds.escalate_on_uncertainty',
                        f'expected true/false, got {escalate!r}')
    dg = mapping(doc['degrade'], 'degrade', allowed={'speed_scale', 'max_linear', 'max_angular'},
                 required={'speed_scale', 'max_linear', 'max_angular'})
    return RiskPolicy(
        version=text(doc['version'], 'version'),
        block_collision_risk=number(th['block_collision_risk'], 'thresholds.block_collision_risk',
                                    **unit),
        degrade_collision_risk=number(th['degrade_collision_risk'],
                                      'thresholds.degrade_collision_risk', **unit),
        block_constraint_risk=number(th['block_constraint_risk'],
                                     'thresholds.block_constraint_risk', **unit),
        degrade_constraint_risk=number(th['degrade_constraint_risk'],
                                       'thresholds.degrade_constraint_risk', **unit),
        block_safety_score_below=number(th['block_safety_score_below'],
                                        'thresholds.block_safety_score_below', **unit),
        fallback_time_to_collision=number(th['fallback_time_to_collision'],
                                          'thresholds.fallback_time_to_collision', lo=0.0),
        escalate_on_uncertainty=escalate,
        degrade=Degrade(
            speed_scale=number(dg['speed_scale'], 'degrade.speed_scale', lo=0.0, hi=1.0),
            max_linear=number(dg['max_linear'], 'degrade.max_linear', lo=0.0),
            max_angular=number(dg['max_angular'], 'degrade.max_angular', lo=0.0)),
    )
