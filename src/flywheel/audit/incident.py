"""Incident reports: validated before they are accepted, so the ledger holds no malformed one."""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from flywheel.errors import IncidentError

# The bounds of msg/Incident.msg, so a report that did not come over ROS meets them too.
MAX_DESCRIPTION = 4096
MAX_NAME = 128                    # reporter, object_id
MAX_LINKS = 1000
MAX_PROPOSAL_ID = 64
MAX_FUTURE_NS = 1_000_000_000     # clocks differ a little; an incident from the future does not


class Severity(enum.IntEnum):
    """Mirrors Incident.SEVERITY_*."""

    INFO = 0
    NEAR_MISS = 1
    COLLISION = 2


@dataclass(frozen=True)
class IncidentReport:
    stamp_ns: int
    frame_id: str
    severity: int
    x: float
    y: float
    object_id: str
    distance: float
    reporter: str
    description: str
    linked_proposal_ids: tuple[str, ...] = ()


def check_incident(report: IncidentReport, now_ns: int, world_frame: str) -> IncidentReport:
    """The report, or IncidentError naming the first bad field."""
    if report.severity not in Severity._value2member_map_:
        raise IncidentError(f'severity: unknown value {report.severity}')
    if not (math.isfinite(report.x) and math.isfinite(report.y)):
        raise IncidentError(f'position: must be finite, got ({report.x}, {report.y})')
    if not (math.isfinite(report.distance) and report.distance >= 0.0):
        raise IncidentError(f'distance: must be finite and >= 0, got {report.distance}')
    if report.frame_id and report.frame_id != world_frame:
        raise IncidentError(f'frame_id: {report.frame_id!r}, expected {world_frame!r}')
    if not report.reporter.strip():
        raise IncidentError('reporter: must name who reports it')
    for name in ('reporter', 'object_id'):
        if len(getattr(report, name)) > MAX_NAME:
            raise IncidentError(f'{name}: {len(getattr(report, name))} characters > {MAX_NAME}')
    if len(report.linked_proposal_ids) > MAX_LINKS:
        raise IncidentError(f'linked_proposal_ids: {len(report.linked_proposal_ids)} > '
                            f'{MAX_LINKS}')
    for pid in report.linked_proposal_ids:
        if len(pid) > MAX_PROPOSAL_ID:
            raise IncidentError(f'linked_proposal_ids: {pid[:80]!r}... longer than '
                                f'{MAX_PROPOSAL_ID}')
    if len(report.description) > MAX_DESCRIPTION:
        raise IncidentError(f'description: {len(report.description)} characters > '
                            f'{MAX_DESCRIPTION}')
    if report.stamp_ns <= 0:
        raise IncidentError(f'stamp: must be a time, got {report.stamp_ns}')
    if report.stamp_ns > now_ns + MAX_FUTURE_NS:
        raise IncidentError(f'stamp: {(report.stamp_ns - now_ns) * 1e-9:.1f} s in the future')
    return report
