"""Which Oracle versions the Gate may honour while the Oracle swaps to a newly installed release.

Until the Oracle reports that it runs the new release, verdicts of the version it still runs keep
counting, so no proposal is dropped during a swap. Never on the Oracle's word alone for ever: after
``swap_timeout`` only the installed release counts, so an Oracle that cannot swap (it refused the
release, or it is stuck) stops the robot instead of governing with a release governance replaced.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Swap:
    """A swap in progress: to ``version``, started at ``started_ns`` (wall clock)."""

    version: str
    started_ns: int

    def accepted(self, running: str, now_ns: int, timeout_ns: int) -> tuple[str, ...]:
        if running and running != self.version and now_ns - self.started_ns <= timeout_ns:
            return (self.version, running)
        return (self.version,)

    def timed_out(self, running: str, now_ns: int, timeout_ns: int) -> bool:
        return running != self.version and now_ns - self.started_ns > timeout_ns
