"""verifier_node: answers the Gate's escalations (service ~/verify, srv/Verify) with the
verifier core's independent check (flywheel/verify/verifier.py), numbered, stamped and signed.

Invariants:
- Every request gets an answer, and only an answer that says SAFE can release anything: an
  inactive verifier, one without knowledge yet (following governance, before its first release),
  bytes that are not a proposal within its bounds, or bytes whose digest is not the one asked
  about are answered unsafe (MALFORMED, detail says why); a check past the core's deadline is
  TIMEOUT. The answer names the digest computed here from the bytes received.
- It answers from what governance knows: the release in force (with follow_governance, only
  governance's signed releases, verified again here: flywheel/release/follower.py; otherwise
  spec_path) and a region around every incident heard on `incidents` or recorded in the audit
  ledger (read only, re-read every ledger_poll). Knowledge is rebuilt off the executor thread and
  swapped whole between two answers, so each answer comes from one consistent knowledge.
- Answers are numbered (epoch, seq) in the order they are made and signed with the verifier key
  (authenticate): the Gate and governance believe no other.
A lifecycle node like the Oracle: keys, root, spec and ledger are loaded on configure (a failure is
FAILURE with the reason); while not active it answers, unsafe.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import replace
from pathlib import Path

from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from alignment_flywheel.msg import Incident, OracleRelease
from alignment_flywheel.srv import Verify
from flywheel.audit.config import AuditConfig
from flywheel.audit.incident import Severity, check_incident
from flywheel.audit.ledger import connect
from flywheel.audit.record import RecordKind
from flywheel.auth import MessageKey, load_message_key
from flywheel.errors import FlywheelError, IncidentError, LedgerError, ReleaseError
from flywheel.files import read_file
from flywheel.health import LatencyWindow, Level, counts_text
from flywheel.oracle.directive import Directive
from flywheel.oracle.spec import OracleSpec, load_spec
from flywheel.provision import NODE_KEYS, ROOT, key_path
from flywheel.release.follower import ReleaseFollower
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.answer_msgs import answer_to_msg
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.records import incident_report
from flywheel.ros.run import autostart, run_node, wall_now
from flywheel.verifier_answer import MAX_DETAIL, VerifierAnswer
from flywheel.verifier_config import VerifierNodeConfig
from flywheel.verify.verifier import (IncidentRegion, Knowledge, Verifier, VerifierConfig,
                                      VerifyReason)
from flywheel.wire import WireError, decode_proposal

NAN = float('nan')
UNCHECKED = (NAN, NAN, NAN, NAN)
LEDGER_BATCH = 10000          # incident records read per poll at most
FIRST_KNOWLEDGE_S = 10.0      # configure waits this long for the knowledge of spec_path


class VerifierNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__('verifier', **kwargs)
        self.config = config = declare_config(self, VerifierNodeConfig)
        self.check_config = declare_config(self, VerifierConfig, prefix='check.')
        self.active = False
        self.problem = ''
        self.epoch, self.seq = time.time_ns(), 0
        self.key: MessageKey | None = None
        self.verifier: Verifier | None = None      # swapped whole by the worker
        self.counts: Counter[str] = Counter()
        self.last_refusal = ''
        self._latency = LatencyWindow()
        self._lock = threading.Lock()              # the worker's inputs and knowledge
        self._wake = threading.Event()
        self._configured = False
        self._directive: Directive | None = None   # the newest directive not yet followed
        self._heard: list = []                     # incident reports from the topic
        self._follower: ReleaseFollower | None = None
        self._spec: OracleSpec | None = None
        self._incidents: OrderedDict[tuple, object] = OrderedDict()
        self._ledger_seq = 0                       # the last ledger record read
        self._built = threading.Event()
        self.create_service(Verify, topics.VERIFY, self.on_verify)
        self.create_subscription(Incident, topics.INCIDENTS, self.on_incident, qos.STREAM)
        if config.follow_governance:
            self.create_subscription(OracleRelease, topics.ORACLE_RELEASE, self.on_release,
                                     qos.STATUS)
        diagnostics.report_health(self, 'verifier', self.health)
        threading.Thread(target=self._work, daemon=True, name='verifier-knowledge').start()

    # -- lifecycle ------------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        config = self.config
        try:
            key = (load_message_key(key_path(config.signing_key_path, NODE_KEYS['verifier']))
                   if config.authenticate else None)
            follower = spec = None
            if config.follow_governance:
                follower = ReleaseFollower(read_file(key_path(config.trust_root_path, ROOT),
                                                     'trust root'), wall_now(),
                                           config.authenticate)
            else:
                spec = load_spec(config_path(config.spec_path))
        except FlywheelError as exc:
            self.problem = str(exc)
            self.get_logger().error(f'cannot configure: {exc}')
            return TransitionCallbackReturn.FAILURE
        if key is None:
            self.get_logger().warning('AUTHENTICATION OFF (authenticate: false): answers go out '
                                      'unsigned; only for tests and the demo\'s bypass run')
        self.key = key
        with self._lock:
            self._follower, self._spec = follower, spec
            self._configured = True
        self._built.clear()
        self._wake.set()
        # the ledger's incidents and the first knowledge, before answering anything
        if spec is not None and not self._built.wait(FIRST_KNOWLEDGE_S):
            self.problem = f'no knowledge built within {FIRST_KNOWLEDGE_S}s: {self.last_refusal}'
            self.get_logger().error(f'cannot configure: {self.problem}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            'verifier configured: ' + (f'{spec.version} from {config.spec_path}' if spec else
                                       'waiting for governance\'s release; nothing is safe '
                                       'until then')
            + f', {len(self._incidents)} incidents known, deadline '
            f'{self.check_config.deadline_s * 1e3:.0f} ms')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.active = True
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        with self._lock:
            self._configured = False
            self._follower = self._spec = self.verifier = self.key = None
            self._ledger_seq = 0
            self._incidents.clear()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        return TransitionCallbackReturn.SUCCESS

    # -- answering ------------------------------------------------------------------------------

    def on_verify(self, request, response):
        started = time.monotonic_ns()
        verifier = self.verifier
        digest, hold = request.proposal_digest[:64], float(request.hold)
        verification = None
        if not self.active or verifier is None:
            why = ('the verifier is not active' if not self.active else
                   'no knowledge yet (no release from governance)')
        else:
            try:
                proposal = decode_proposal(bytes(request.proposal), self.check_config.max_points)
            except WireError as exc:
                why = f'unreadable proposal: {exc}'
            else:
                if proposal.digest != request.proposal_digest:
                    why = (f'the bytes digest to {proposal.digest[:16]}..., not the '
                           f'{digest[:16]}... asked about')
                    digest = proposal.digest
                else:
                    verification = verifier.check(proposal, hold, time.monotonic_ns)
        if verification is None:
            answer = VerifierAnswer(digest, verifier.knowledge.version if verifier else '',
                                    False, int(VerifyReason.MALFORMED), why[:MAX_DETAIL], NAN,
                                    NAN, NAN, hold, UNCHECKED, 0, self.epoch, 0)
        else:
            v = verification
            detail = ': '.join(filter(None, (v.zone_id, v.detail)))[:MAX_DETAIL]
            answer = VerifierAnswer(v.digest, verifier.knowledge.version, v.safe, int(v.reason),
                                    detail, v.min_clearance, v.x, v.y, hold, tuple(v.bounds), 0,
                                    self.epoch, 0)
        response.answer = answer_to_msg(self._sign(answer, started))
        return response

    def _sign(self, answer: VerifierAnswer, started: int) -> VerifierAnswer:
        """Number, stamp and sign (the executor answers one request at a time: seq follows
        the order answers are made)."""
        self.seq += 1
        answer = replace(answer, seq=self.seq, stamp_ns=self.get_clock().now().nanoseconds)
        if self.key is not None:
            answer = replace(answer, key_id=self.key.key_id,
                             signature=self.key.sign(answer.canonical_bytes()))
        elapsed = time.monotonic_ns() - started
        self.counts['safe' if answer.safe else _reason_name(answer.reason)] += 1
        self._latency.add(elapsed * 1e-9)
        return replace(answer, elapsed_ns=elapsed)

    # -- knowledge ------------------------------------------------------------------------------

    def on_release(self, msg: OracleRelease) -> None:
        directive = Directive(msg.epoch, msg.seq, msg.number, msg.oracle_version, msg.rollback,
                              bytes(msg.bundle), bytes(msg.root), msg.candidate_version,
                              msg.candidate_number, bytes(msg.candidate_bundle),
                              bytes(msg.candidate_root), msg.key_id, bytes(msg.signature))
        with self._lock:
            self._directive = directive        # only the newest waits
        self._wake.set()

    def on_incident(self, msg: Incident) -> None:
        with self._lock:
            self._heard.append(incident_report(msg, self.get_clock().now().nanoseconds))
            del self._heard[:-self.config.max_incidents]
        self._wake.set()

    def _work(self) -> None:
        """Follow releases, take incidents, read the ledger, rebuild: off the executor."""
        while True:
            self._wake.wait(timeout=self.config.ledger_poll)
            self._wake.clear()
            try:
                self._refresh()
            except Exception as exc:  # noqa: BLE001 - keep the old knowledge, say why
                self.last_refusal = f'knowledge not updated: {exc!r}'[:512]
                self.get_logger().error(self.last_refusal, throttle_duration_sec=5.0)

    def _refresh(self) -> None:
        with self._lock:
            if not self._configured:
                return
            directive, self._directive = self._directive, None
            heard, self._heard = self._heard, []
            follower = self._follower
        changed = False
        if directive is not None and follower is not None:
            try:
                followed = follower.follow(directive, wall_now())
            except ReleaseError as exc:
                self.counts['releases_refused'] += 1
                self.last_refusal = (f'release {directive.number} ({directive.oracle_version}) '
                                     f'refused: {type(exc).__name__}: {exc}')[:512]
                self.get_logger().error(self.last_refusal)
            else:
                with self._lock:
                    self._spec = followed.release.spec
                changed = True
                self.get_logger().info(f'checking against Oracle {self._spec.version} (release '
                                       f'{directive.number})')
        changed |= self._take(heard, 'topic')
        changed |= self._take(self._read_ledger(), 'ledger')
        if changed or self.verifier is None:
            self._rebuild()

    def _take(self, incidents, source: str) -> bool:
        """Keep each incident once (the same one comes on the topic and from the ledger), in
        the world frame, well formed; the newest max_incidents."""
        now = self.get_clock().now().nanoseconds
        added = False
        for incident in incidents:
            if isinstance(incident, dict):
                frame, key = incident.get('frame_id', ''), _key(incident)
            else:
                try:
                    check_incident(incident, now, self.config.frame_id)
                except IncidentError as exc:
                    self.get_logger().warning(f'incident from the {source} ignored: {exc}',
                                              throttle_duration_sec=5.0)
                    continue
                frame, key = self.config.frame_id, _key(incident)
            if frame not in ('', self.config.frame_id) or key is None or key in self._incidents:
                continue
            try:
                IncidentRegion.of(incident)
            except ValueError as exc:
                self.get_logger().warning(f'incident from the {source} ignored: {exc}',
                                          throttle_duration_sec=5.0)
                continue
            with self._lock:
                self._incidents[key] = incident
                while len(self._incidents) > self.config.max_incidents:
                    self._incidents.popitem(last=False)
            added = True
        return added

    def _read_ledger(self) -> list[dict]:
        """Incident records added to the audit ledger since the last read (none while there is
        no ledger yet), read only."""
        path = AuditConfig(ledger_path=self.config.ledger_path).ledger_file(
            Path(os.environ.get('ROS_HOME', Path.home() / '.ros')))
        try:
            conn = connect(path, readonly=True)
        except LedgerError:
            return []
        try:
            rows = conn.execute(
                'SELECT seq, stamp_ns, body FROM records WHERE kind = ? AND seq > ? ORDER BY '
                'seq LIMIT ?', (RecordKind.INCIDENT.value, self._ledger_seq, LEDGER_BATCH)
            ).fetchall()
        finally:
            conn.close()
        found = []
        for seq, stamp_ns, body in rows:
            self._ledger_seq = seq
            try:
                found.append({**json.loads(body), 'stamp_ns': stamp_ns})
            except ValueError:
                continue
        return found

    def _rebuild(self) -> None:
        with self._lock:
            spec, incidents = self._spec, list(self._incidents.values())
        if spec is None:
            return
        try:
            verifier = Verifier(Knowledge.of(spec, incidents), self.check_config)
        except ValueError as exc:
            self.last_refusal = f'knowledge refused: {exc}'[:512]
            self.get_logger().error(self.last_refusal)
            return
        self.verifier = verifier        # one reference: the next answer uses it whole
        self._built.set()

    # -- diagnostics ----------------------------------------------------------------------------

    def health(self):
        verifier = self.verifier
        version = verifier.knowledge.version if verifier else ''
        level, message = Level.OK, f'checking against {version}'
        if not self.active:
            level, message = Level.WARN, 'inactive: every answer is unsafe'
        if self.key is None:
            level, message = Level.WARN, 'AUTHENTICATION OFF: answers go out unsigned'
        if verifier is None:
            level, message = Level.ERROR, 'no knowledge yet: every answer is unsafe'
        return level, message, (
            ('oracle_version', version),
            ('incident_regions', str(len(verifier.knowledge.incidents) if verifier else 0)),
            ('answers', str(self.seq)), ('answer_time', self._latency.summary()),
            ('deadline', f'{self.check_config.deadline_s * 1e3:.0f} ms'),
            ('last_refusal', self.last_refusal), ('epoch', str(self.epoch)),
        ) + counts_text(self.counts, ('safe',) + tuple(
            r.name for r in VerifyReason if r != VerifyReason.SAFE) + ('releases_refused',))


def _reason_name(reason: int) -> str:
    try:
        return VerifyReason(reason).name
    except ValueError:
        return str(reason)


def _key(incident) -> tuple | None:
    """What identifies an incident wherever it comes from: when, how bad, where (mm)."""
    get = incident.get if isinstance(incident, dict) else (
        lambda k, d=None: getattr(incident, k, d))
    try:
        severity = get('severity')
        severity = Severity[severity] if isinstance(severity, str) else Severity(int(severity))
        return (int(get('stamp_ns')), int(severity), round(float(get('x')), 3),
                round(float(get('y')), 3))
    except (KeyError, ValueError, TypeError):
        return None


def build() -> VerifierNode:
    return autostart(VerifierNode())


def main(argv=None) -> int:
    return run_node('verifier', build, argv)


if __name__ == '__main__':
    raise SystemExit(main())
