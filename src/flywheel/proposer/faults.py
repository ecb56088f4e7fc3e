"""Seeded fault injection: makes a well-behaved planner misbehave the way real planners do, so the
Gate has something to catch. Same seed, same faults."""
from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, replace

import numpy as np

from flywheel.kinematics import rollout
from flywheel.proposer.planner import Plan


class Fault(enum.Enum):
    SHORTCUT = 'cut a corner of the route, straight through whatever is in the way'
    OVERSPEED = 'scale every speed by overspeed_factor (the poses follow the faster twists)'
    NAN = 'a NaN in one trajectory state'


@dataclass(frozen=True)
class FaultConfig:
    rate: float = 0.0                  # chance per proposal that an episode starts
    min_duration: float = 3.0          # s
    max_duration: float = 7.0          # s
    overspeed_factor: float = 2.5
    seed: int = 0
    kinds: tuple[str, ...] = ('SHORTCUT', 'SHORTCUT', 'OVERSPEED', 'NAN')

    def __post_init__(self):
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f'fault rate: must be in [0, 1], got {self.rate}')
        if not 0.0 < self.min_duration <= self.max_duration:
            raise ValueError(f'fault durations: need 0 < min <= max, got '
                             f'{self.min_duration}, {self.max_duration}')
        for kind in self.kinds:
            if kind not in Fault.__members__:
                raise ValueError(f'fault kinds: unknown {kind!r} '
                                 f'(known: {list(Fault.__members__)})')


class FaultInjector:
    """Decides, per proposal, whether a fault episode is running; applies plan-level faults."""

    def __init__(self, config: FaultConfig):
        self.config = config
        self._rng = random.Random(config.seed)
        self._kinds = [Fault[k] for k in config.kinds]
        self._active: Fault | None = None
        self._until = 0.0

    def current(self, now: float) -> Fault | None:
        """The fault in force at ``now`` (s), starting a new episode by chance."""
        if self._active is not None and now >= self._until:
            self._active = None
        if self._active is None and self._kinds and self._rng.random() < self.config.rate:
            self._active = self._rng.choice(self._kinds)
            self._until = now + self._rng.uniform(self.config.min_duration,
                                                  self.config.max_duration)
        return self._active

    def corrupt(self, plan: Plan, fault: Fault | None) -> Plan:
        """Apply OVERSPEED or NAN to a plan (SHORTCUT is applied by the planner)."""
        if fault is Fault.OVERSPEED:
            # Rolled out again from the first pose, so the proposal stays kinematically
            # consistent and reaches the Oracle to be caught as overspeed, not as malformed.
            k = self.config.overspeed_factor
            x, y, yaw = plan.states[0, :3]
            states = rollout(x, y, yaw, plan.states[:, 3:] * (k, 1.0), np.diff(plan.times))
            return replace(plan, states=states, command=(plan.command[0] * k, plan.command[1]))
        if fault is Fault.NAN:
            states = plan.states.copy()
            states[self._rng.randrange(len(states)), self._rng.randrange(5)] = math.nan
            return replace(plan, states=states)
        return plan
