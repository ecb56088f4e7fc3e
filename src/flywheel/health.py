"""Health: what a node reports on /diagnostics, in plain data (the node turns it into a
diagnostic_msgs/DiagnosticStatus). Levels mirror DiagnosticStatus: an aggregator can alarm on them.

Counters are cumulative since the node started; a rate is counted over the last report period.
"""
from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field


class Level(enum.IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Health:
    name: str                      # e.g. "alignment_flywheel: gate"
    hardware_id: str               # the node's fully qualified name
    level: Level
    message: str
    values: tuple[tuple[str, str], ...] = ()


@dataclass
class RateCounter:
    """Events per second over the last report period, and the total."""

    total: int = 0
    _at_last_report: int = 0
    _last_report_ns: int | None = None

    def add(self, n: int = 1) -> None:
        self.total += n

    def rate(self, now_ns: int) -> float:
        if self._last_report_ns is None or now_ns <= self._last_report_ns:
            rate = 0.0
        else:
            rate = (self.total - self._at_last_report) / ((now_ns - self._last_report_ns) * 1e-9)
        self._at_last_report, self._last_report_ns = self.total, now_ns
        return rate


@dataclass
class LatencyWindow:
    """Recent latencies (s) for a p50/p99 on each report; bounded."""

    size: int = 1000
    samples: list = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        if len(self.samples) > self.size:
            del self.samples[:len(self.samples) - self.size]

    def summary(self) -> str:
        if not self.samples:
            return 'none yet'
        ordered = sorted(self.samples)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return f'p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms over {len(ordered)}'


def counts_text(counts: Counter, keys) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(counts.get(k, 0))) for k in keys)
