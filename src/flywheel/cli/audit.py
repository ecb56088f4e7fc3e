"""`flywheel audit ...` and `flywheel incident ...`: offline except `incident report`."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from flywheel.audit.keys import load_public_key
from flywheel.audit.ledger import connect
from flywheel.audit.query import Query, parse_time, records, stored_public_key
from flywheel.audit.record import RecordKind
from flywheel.audit.sequence import check_completeness
from flywheel.audit.verify import gap_text, verify_ledger
from flywheel.errors import FlywheelError, LedgerError

EXIT_OK, EXIT_TAMPERED, EXIT_INCOMPLETE = 0, 1, 1


def _key(conn, key_path: str | None):
    if key_path:
        try:
            return load_public_key(Path(key_path).read_bytes()), 'given'
        except OSError as exc:
            raise LedgerError(f'--key: cannot read {key_path}: {exc.strerror}') from exc
    return stored_public_key(conn), 'ledger'


def cmd_verify(args) -> int:
    conn = connect(args.ledger, readonly=True)
    try:
        key, source = _key(conn, args.key)
        report = verify_ledger(conn, key)
        completeness = check_completeness(conn) if args.require_complete else None
    finally:
        conn.close()
    print(report.summary())
    if source == 'ledger':
        print('note: checked against the public key stored in the ledger itself, which proves '
              'integrity but not who wrote it; pass --key with the writer\'s public key')
    for segment in report.segments:
        print(f'segment record {segment["seq"]}: records {segment["damaged_from"]}..'
              f'{segment["damaged_to"]} found damaged by the writer ({segment["problem"]})')
    for gap in report.gaps:
        print(f'gap record {gap["seq"]}: {gap_text(gap)}')
    if not report.ok:
        return EXIT_TAMPERED
    if completeness is not None:
        _print_completeness(completeness, only_incomplete=True)
        return EXIT_OK if completeness.complete else EXIT_INCOMPLETE
    return EXIT_OK


def cmd_gaps(args) -> int:
    conn = connect(args.ledger, readonly=True)
    try:
        completeness = check_completeness(conn)
    finally:
        conn.close()
    _print_completeness(completeness, only_incomplete=False)
    return EXIT_OK if completeness.complete else EXIT_INCOMPLETE


def _print_completeness(completeness, only_incomplete: bool) -> None:
    for stream in completeness.streams:
        if not (only_incomplete and stream.complete):
            print(stream.line())
    print(completeness.summary())


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec='milliseconds')


def _query(args, kind: str | None) -> Query:
    try:
        return Query(kind=kind, since_ns=parse_time(args.since) if args.since else None,
                     until_ns=parse_time(args.until) if args.until else None,
                     action=getattr(args, 'action', None), release=getattr(args, 'release', None),
                     proposer=getattr(args, 'proposer', None), limit=args.limit)
    except ValueError as exc:
        raise FlywheelError(str(exc)) from exc


def _print(rows, as_json: bool, line) -> int:
    count = 0
    for row in rows:
        print(json.dumps(row, sort_keys=True) if as_json else line(row))
        count += 1
    if not as_json:
        print(f'({count} records)', file=sys.stderr)
    return EXIT_OK


_DECISION_KINDS = (RecordKind.DECISION.value, RecordKind.IGNORED_VERDICT.value)


def _line(r: dict) -> str:
    head = f'{r["seq"]:>8} {_when(r["stamp_ns"])} {r["kind"]:<9} '
    if r['kind'] in _DECISION_KINDS:
        return (head + f'{r["action"]:<8} {r["proposal_id"]} oracle {r["oracle_version"]} '
                f'[{", ".join(map(str, r["reasons"]))}]'
                + (f' #{r["stream"]["epoch"]}/{r["stream"]["seq"]}'
                   if isinstance(r.get('stream'), dict) else '')
                + ('' if r.get('signals') or r['kind'] != RecordKind.DECISION.value
                   or not r['oracle_version'] else ' NO SIGNALS'))
    if r['kind'] == RecordKind.GAP.value:
        return head + gap_text(r)
    return head + json.dumps({k: v for k, v in r.items() if k not in ('seq', 'stamp_ns', 'kind')},
                             sort_keys=True)


def cmd_query(args) -> int:
    conn = connect(args.ledger, readonly=True)
    try:
        return _print(records(conn, _query(args, args.kind)), args.json, _line)
    finally:
        conn.close()


def cmd_export(args) -> int:
    from flywheel.audit.mcap_export import export_mcap
    conn = connect(args.ledger, readonly=True)
    try:
        key, _ = _key(conn, args.key)
        report = verify_ledger(conn, key)
        counts = export_mcap(conn, Path(args.mcap), report)
    finally:
        conn.close()
    print(f'wrote {args.mcap}: ' + ', '.join(f'{n} on {t}' for t, n in counts.items()))
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_TAMPERED


def cmd_incident_list(args) -> int:
    conn = connect(args.ledger, readonly=True)
    try:
        return _print(records(conn, _query(args, 'incident')), args.json, lambda r: (
            f'{r["incident_id"]:<32} {_when(r["stamp_ns"])} {r["severity"]:<9} '
            f'({r["x"]:.2f}, {r["y"]:.2f}) {r["object_id"] or "-"} by {r["reporter"]}: '
            f'{r["description"]} [{len(r["linked_proposal_ids"])} decisions linked]'))
    finally:
        conn.close()


def cmd_incident_report(args) -> int:
    from flywheel.ros.incident_client import report_incident
    return report_incident(args)


def add_commands(sub) -> None:
    audit = sub.add_parser('audit', help='verify, query and export the audit ledger (offline)')
    verbs = audit.add_subparsers(dest='verb', required=True)
    verify = verbs.add_parser('verify', help='check the hash chain and signed checkpoints')
    verify.add_argument('ledger')
    verify.add_argument('--key', help="the writer's public key (PEM); default: the ledger's own")
    verify.add_argument('--require-complete', action='store_true',
                        help='also exit 1 unless every numbered stream record is in the ledger '
                             'exactly once: none missing (named by a GAP record or not), none '
                             'twice')
    verify.set_defaults(func=cmd_verify)
    gaps = verbs.add_parser('gaps', help='per stream and epoch: records, gaps, duplicates; '
                            'exits 1 if anything is missing or doubled')
    gaps.add_argument('ledger')
    gaps.set_defaults(func=cmd_gaps)
    query = verbs.add_parser('query', help='list records matching filters')
    query.add_argument('ledger')
    query.add_argument('--kind', choices=[k.value for k in RecordKind])
    query.add_argument('--action', choices=['ALLOW', 'DEGRADE', 'ESCALATE', 'BLOCK', 'FALLBACK'])
    query.add_argument('--release', help='Oracle version')
    query.add_argument('--proposer', help='proposer id')
    _time_filters(query)
    query.set_defaults(func=cmd_query)
    export = verbs.add_parser('export', help='write an MCAP flight record (Foxglove opens it)')
    export.add_argument('ledger')
    export.add_argument('--mcap', required=True, help='output file')
    export.add_argument('--key', help="the writer's public key (PEM); default: the ledger's own")
    export.set_defaults(func=cmd_export)

    incident = sub.add_parser('incident', help='report and list safety incidents')
    verbs = incident.add_subparsers(dest='verb', required=True)
    report = verbs.add_parser('report', help='report an incident to the running audit node')
    report.add_argument('--x', type=float, required=True)
    report.add_argument('--y', type=float, required=True)
    report.add_argument('--severity', choices=['info', 'near_miss', 'collision'], default='info')
    report.add_argument('--text', required=True, help='what happened')
    report.add_argument('--reporter', default='operator')
    report.add_argument('--object', default='', help='what was hit or nearly hit')
    report.add_argument('--at', help='when (ISO 8601 or ns; default now)')
    report.add_argument('--link', nargs='*', default=[], help='proposal ids (default: the '
                        'decisions of the seconds before)')
    report.add_argument('--timeout', type=float, default=10.0,
                        help='seconds to wait for the audit node (default 10)')
    report.add_argument('--namespace', default='',
                        help='the graph\'s ROS namespace (default: none)')
    report.set_defaults(func=cmd_incident_report)
    listing = verbs.add_parser('list', help='incidents in a ledger')
    listing.add_argument('ledger')
    _time_filters(listing)
    listing.set_defaults(func=cmd_incident_list)


def _time_filters(parser) -> None:
    parser.add_argument('--since', help='ISO 8601 time or ns since the epoch')
    parser.add_argument('--until', help='ISO 8601 time or ns since the epoch')
    parser.add_argument('--limit', type=int)
    parser.add_argument('--json', action='store_true', help='one JSON object per line')
