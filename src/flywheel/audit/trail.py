"""AuditTrail: what the audit node does with what it hears, in plain data.

- A decision record carries the verdict it was decided on, as the Gate embedded it in the
  GateDecision: no join with another topic (the join lost the race for a fifth of the decisions).
  A GateDecision of subject VERDICT (a verdict the Gate ignored) becomes an IGNORED_VERDICT record,
  so `decision` records are exactly the proposals' decisions.
- Gate decisions and governance events are sequenced streams (flywheel.audit.sequence): each record
  is written once however often it is delivered, and what never arrived is a GAP record written
  just before the record that revealed it. Where every stream stands is restored from the ledger
  at start, and written as a STREAMS record at start, every ``snapshot_every`` stream records and
  at stop, so a restart replays only the records after the newest one.
- Incidents without links are linked to the decisions the ledger holds for the ``link_window``
  seconds before them (however late the report); an accepted incident is committed before it is
  acknowledged.
"""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.audit.governance_event import GovernanceEventKind, record_kind, transition_fields
from flywheel.audit.incident import IncidentReport, Severity, check_incident
from flywheel.audit.ledger import Ledger
from flywheel.audit.query import Query, records
from flywheel.audit.record import RecordKind
from flywheel.audit.sequence import Gap, StreamPosition, Streams
from flywheel.enforcement.decision import Subject

SNAPSHOT_EVERY = 10_000


@dataclass(frozen=True)
class Receipt:
    """What became of one stream record."""

    seq: int | None                 # its ledger seq; None: it was already recorded, and dropped
    gap: Gap | None = None          # missing just before it, recorded as ledger record gap_seq
    gap_seq: int | None = None
    late: bool = False              # it filled (part of) a gap recorded earlier

    @property
    def duplicate(self) -> bool:
        return self.seq is None


class AuditTrail:
    def __init__(self, ledger: Ledger, world_frame: str, link_window_s: float,
                 snapshot_every: int = SNAPSHOT_EVERY):
        if snapshot_every < 1:
            raise ValueError(f'snapshot_every: must be >= 1, got {snapshot_every}')
        self.ledger = ledger
        self.world_frame = world_frame
        self.link_window_ns = int(link_window_s * 1e9)
        self.snapshot_every = snapshot_every
        self.streams = Streams.from_ledger(ledger.connection)
        self._since_snapshot = 0
        self.incidents = 0
        self.gaps = 0                   # GAP records written by this audit run
        self.duplicates = 0

    # -- the audit's own life -------------------------------------------------------------------

    def start(self, now_ns: int, **detail) -> int:
        """Record the audit's start and where every stream stands; committed."""
        seq = self.lifecycle('started', now_ns, **detail)
        self._snapshot(now_ns)
        self.ledger.commit()
        return seq

    def stop(self, now_ns: int) -> None:
        """Record where every stream stands and the audit's stop; commit and close the ledger."""
        self._snapshot(now_ns)
        self.lifecycle('stopped', now_ns)
        self.ledger.close()

    def parameters(self, node: str, changed: dict, deleted: list, stamp_ns: int) -> int:
        """A live parameter change of a running node (as /parameter_events announced it)."""
        return self.ledger.append(RecordKind.PARAMETER, {
            'node': node, 'changed': {k: _plain(v) for k, v in changed.items()},
            'deleted': list(deleted)}, stamp_ns)

    def lifecycle(self, event: str, stamp_ns: int, **detail) -> int:
        seq = self.ledger.append(RecordKind.LIFECYCLE, {'event': event, **detail}, stamp_ns)
        self.ledger.commit()
        return seq

    # -- sequenced streams ----------------------------------------------------------------------

    def decision(self, where: StreamPosition, body: dict, stamp_ns: int) -> Receipt:
        """A GateDecision (body: flywheel.ros.records.decision_record) from ``where``."""
        kind = {Subject.VERDICT.name: RecordKind.IGNORED_VERDICT,
                Subject.SHADOW.name: RecordKind.SHADOW}.get(body['subject'], RecordKind.DECISION)
        return self._receive(kind, where, body, stamp_ns)

    def governance(self, where: StreamPosition, body: dict, stamp_ns: int) -> Receipt:
        """A GovernanceEvent (body: flywheel.ros.records.governance_record) from ``where``; a
        transition also gets its transition, start and goal read from its reason."""
        if body['event'] == GovernanceEventKind.TRANSITION.record_name:
            body = {**body, **transition_fields(body['reason'])}
        return self._receive(record_kind(body), where, body, stamp_ns)

    def _receive(self, kind: RecordKind, where: StreamPosition, body: dict,
                 stamp_ns: int) -> Receipt:
        admission = self.streams.admit(where)
        gap_seq = None
        if admission.gap is not None:
            gap_seq = self.ledger.append(RecordKind.GAP, admission.gap.body(), stamp_ns)
            self.gaps += 1
        if not admission.record:
            self.duplicates += 1
            return Receipt(None)
        seq = self.ledger.append(kind, {**body, 'stream': where.body()}, stamp_ns)
        self._since_snapshot += 1
        if self._since_snapshot >= self.snapshot_every:
            self._snapshot(stamp_ns)
        return Receipt(seq, admission.gap, gap_seq, admission.late)

    def _snapshot(self, stamp_ns: int) -> int:
        self._since_snapshot = 0
        return self.ledger.append(RecordKind.STREAMS, self.streams.snapshot(), stamp_ns)

    # -- incidents ------------------------------------------------------------------------------

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


def _plain(value):
    """A parameter value as JSON holds it (arrays as lists)."""
    return list(value) if isinstance(value, (list, tuple)) else value
