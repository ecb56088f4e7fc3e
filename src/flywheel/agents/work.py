"""WorkItem: something an agent noticed that needs triage (a rate over its threshold, a
regression after a rollout). Plain data; the monitor and the blue team raise them, triage ranks
them with incidents and flaws."""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class Signal(enum.Enum):
    """What raised a work item."""

    INCIDENT_RATE = 'incident_rate'        # incidents per minute in a region (monitor)
    ESCALATION_RATE = 'escalation_rate'    # share of decisions escalated, per region (monitor)
    STOP_RATE = 'stop_rate'                # share of decisions stopped (BLOCK, FALLBACK) (monitor)
    UNVERIFIED_RATE = 'unverified_rate'    # share of escalations the verifier did not clear
    FALSE_STOPS = 'false_stops'            # stops rose after a rollout (blue team)
    LOST_BASIN = 'lost_basin'              # golden basin members lost (blue team)
    THROUGHPUT = 'throughput'              # commanded speed or approvals fell (blue team)


@dataclass(frozen=True)
class WorkItem:
    """``region`` names where (a zone id, ``cell:<col>,<row>`` of the monitor's grid, or
    ``all``); (x, y) its centre when it has one (NaN otherwise); ``rate`` the measured value and
    ``threshold`` the one it crossed; ``count`` the events behind it; ``evidence`` their ids
    (incident ids, proposal ids, basin case ids), at most MAX_EVIDENCE of them."""

    signal: Signal
    region: str
    rate: float
    threshold: float
    count: int
    x: float = math.nan
    y: float = math.nan
    evidence: tuple[str, ...] = ()
    detail: str = ''

    MAX_EVIDENCE = 64

    def __post_init__(self):
        if not isinstance(self.signal, Signal):
            raise ValueError(f'signal: need a Signal, got {self.signal!r}')
        if not isinstance(self.region, str) or not self.region:
            raise ValueError(f'region: need a non-empty string, got {self.region!r}')
        if not (math.isfinite(self.rate) and math.isfinite(self.threshold)):
            raise ValueError(f'rate, threshold: need finite numbers, got {self.rate!r}, '
                             f'{self.threshold!r}')
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f'count: need an integer >= 0, got {self.count!r}')
        if len(self.evidence) > self.MAX_EVIDENCE:
            raise ValueError(f'evidence: {len(self.evidence)} ids > {self.MAX_EVIDENCE}')

    @property
    def located(self) -> bool:
        return math.isfinite(self.x) and math.isfinite(self.y)

    def to_doc(self) -> dict:
        return {'signal': self.signal.value, 'region': self.region, 'rate': self.rate,
                'threshold': self.threshold, 'count': self.count, 'x': _plain(self.x),
                'y': _plain(self.y), 'evidence': list(self.evidence), 'detail': self.detail}


def _plain(value: float):
    return value if math.isfinite(value) else None
