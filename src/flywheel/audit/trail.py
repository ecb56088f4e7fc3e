"""AuditTrail: what the audit node does with what it hears, in plain data.

Decisions are joined with the SafetySignals they were decided on (by proposal id) so a decision
record carries its evidence; incidents without links are linked to the decisions the ledger holds
for the ``link_window`` seconds before them (however late the report); an accepted incident is
committed before it is acknowledged.
"""
from __future__ import annotations

from collections import OrderedDict

from flywheel.audit.incident import IncidentReport, Severity, check_incident
from flywheel.audit.ledger import Ledger
from flywheel.audit.query import Query, records
from flywheel.audit.record import RecordKind

MAX_SIGNALS_HELD = 2000


class AuditTrail:
    def __init__(self, ledger: Ledger, world_frame: str, link_window_s: float):
        self.ledger = ledger
        self.world_frame = world_frame
        self.link_window_ns = int(link_window_s * 1e9)
        self._signals: OrderedDict[str, dict] = OrderedDict()
        self.incidents = 0

    def signals(self, proposal_id: str, signals: dict) -> None:
        self._signals[proposal_id] = signals
        while len(self._signals) > MAX_SIGNALS_HELD:
            self._signals.popitem(last=False)

    def decision(self, decision: dict, stamp_ns: int) -> int:
        body = dict(decision, signals=self._signals.pop(decision['proposal_id'], None))
        return self.ledger.append(RecordKind.DECISION, body, stamp_ns)

    def incident(self, report: IncidentReport, now_ns: int, source: str
                 ) -> tuple[int, str, tuple[str, ...]]:
        """(ledger seq, incident id, linked proposal ids); IncidentError if malformed.
        Committed before it returns."""
        check_incident(report, now_ns, self.world_frame)
        linked = report.linked_proposal_ids or tuple(
            r['proposal_id'] for r in records(self.ledger.connection, Query(
                kind=RecordKind.DECISION.value, since_ns=report.stamp_ns - self.link_window_ns,
                until_ns=report.stamp_ns)))
        self.incidents += 1
        incident_id = f'{report.reporter}/{report.stamp_ns}/{self.incidents}'
        seq = self.ledger.append(RecordKind.INCIDENT, {
            'incident_id': incident_id, 'severity': Severity(report.severity).name,
            'x': report.x, 'y': report.y, 'frame_id': report.frame_id or self.world_frame,
            'object_id': report.object_id, 'distance': report.distance,
            'reporter': report.reporter, 'description': report.description,
            'linked_proposal_ids': list(linked), 'source': source}, report.stamp_ns)
        self.ledger.commit()
        return seq, incident_id, linked

    def release(self, event: dict, stamp_ns: int) -> int:
        return self.ledger.append(RecordKind.RELEASE, event, stamp_ns)

    def lifecycle(self, event: str, stamp_ns: int, **detail) -> int:
        seq = self.ledger.append(RecordKind.LIFECYCLE, {'event': event, **detail}, stamp_ns)
        self.ledger.commit()
        return seq
