"""A verified case updates the coverage state, governed, end to end over real DDS: governance,
Oracle, verifier, Gate and audit processes; the probe proposes one situation the release's audit
coverage does not cover. The first proposal escalates and is verified safe; governance counts the
verifier's signed answer from the Gate's record, makes coverage overlay 1 (a ledger event) and
sends it signed; the Oracle applies it, and the same situation stops escalating. A forged overlay
and a replayed one are refused."""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta, timezone

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from securesystemslib.signer import SSlibKey

from alignment_flywheel.msg import CoverageOverlay as CoverageOverlayMsg
from alignment_flywheel.msg import GateDecision
from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.srv import SubmitRelease
from flywheel.auth import assign_signers, load_message_key
from flywheel.errors import LedgerError
from flywheel.provision import NODE_KEYS
from flywheel.release.bundle import build_bundle, sign_bundle
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.overlay import CoverageOverlay
from flywheel.release.root import new_root, sign
from flywheel.ros import qos, topics
from flywheel.ros.overlay_msgs import overlay_to_msg
from test.audit.conftest import records_in
from test.conftest import CONFIG, KEYS
from test.helpers import straight
from test.ros.conftest import OdometryFeed, health, signed_bytes, values, wait_matched

pytestmark = [pytest.mark.ros, pytest.mark.slow]

START = (1.5, 1.3, 0.0)
ROW = '    - [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n'
# y in [1, 2), x in [1, 4) never audited: the situation at START is not covered
UNCOVERED = '    - [1, 0.1, 0.1, 0.1, 1, 1, 1, 1, 1, 1, 1, 1]\n'
IMMEDIATE_PLAN = b'stages: [full]\n'


@pytest.fixture
def governed(tmp_path):
    """A trust root naming this machine's node keys (the verifier's too) and release 1, whose
    audit coverage leaves START uncovered."""
    signers = []
    for name in ('alice', 'bob'):
        generate_key(tmp_path / f'{name}.pem')
        signers.append(load_signer(tmp_path / f'{name}.pem'))
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    root = new_root([s.public_key for s in signers], 1, 1, expires)
    node = {role: SSlibKey.from_crypto(load_message_key(KEYS / name).private.public_key())
            for role, name in NODE_KEYS.items()}
    assign_signers(root.signed, [node['oracle']], [node['governance']],
                   {'proposer': [node['proposer']]}, [node['verifier']])
    sign(root, signers[0])
    root_path = tmp_path / 'root.json'
    root_path.write_bytes(root.to_bytes())
    text = (CONFIG / 'oracle_spec.yaml').read_text()
    cells = text.index('  cells:\n') + len('  cells:\n')
    assert text[cells:cells + 2 * len(ROW)] == 2 * ROW
    spec = text[:cells] + ROW + UNCOVERED + text[cells + 2 * len(ROW):]
    bundle = sign_bundle(build_bundle(spec.encode(), 1, expires, plan=IMMEDIATE_PLAN),
                         signers[0])
    return root_path, bundle


def recorded(ledger, **filters) -> list[dict]:
    try:
        return records_in(ledger, **filters)
    except LedgerError:
        return []


def oracle_counts(reports) -> dict:
    oracle = health(reports[-30:], 'oracle')
    return values(oracle[-1]) if oracle else {}


def test_a_verified_case_stops_the_same_situation_escalating(probe, start_graph, governed,
                                                             tmp_path):
    root_path, bundle = governed
    ledger = tmp_path / 'audit.sqlite'
    root = {'trust_root_path': str(root_path)}
    start_graph(['governance', 'audit', 'oracle', 'verifier', 'gate'], {
        'governance': {**root, 'store_dir': str(tmp_path / 'store')},
        'audit': {'ledger_path': str(ledger)},
        'oracle': {**root, 'follow_governance': True},
        'verifier': {**root, 'follow_governance': True, 'ledger_path': str(ledger)},
        'gate': {**root, 'follow_governance': True}})
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    overlays = probe.collect(CoverageOverlayMsg, topics.ORACLE_OVERLAY, qos.STATUS)
    reports = probe.collect(DiagnosticArray, '/diagnostics', 100)
    proposals = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    forger = probe.node.create_publisher(CoverageOverlayMsg, topics.ORACLE_OVERLAY, qos.STATUS)
    odometry = OdometryFeed(probe, *START)
    key = load_message_key(KEYS / 'proposer.pem')
    epoch, seq = time.time_ns(), 0

    def propose():
        nonlocal seq
        seq += 1
        p, raw = signed_bytes(dataclasses.replace(
            straight(*START, 0.5, seq=seq, stamp_ns=probe.now_ns()), epoch=epoch), key)
        proposals.publish(raw)
        return p

    def decided(p, subject=GateDecision.SUBJECT_PROPOSAL):
        found = []
        probe.spin_until(lambda: found.extend(d for d in decisions if d.proposal_id ==
                                              p.proposal_id and d.subject == subject) or found,
                         5.0)
        return found[0] if found else None

    try:
        client = probe.node.create_client(SubmitRelease, '/governance/submit_release')
        assert client.wait_for_service(timeout_sec=30.0)
        future = client.call_async(SubmitRelease.Request(bundle=list(bundle)))
        assert probe.spin_until(future.done, 30.0) and future.result().accepted
        wait_matched(probe, proposals)
        wait_matched(probe, forger)

        # a forged overlay covering everything is refused (not signed by governance)
        forged = CoverageOverlay(99, '1.0.0', 1, 1.0, ((0.0, 0.0, 12.0, 8.0),))
        verifier_key = load_message_key(KEYS / 'verifier.pem')
        forged = dataclasses.replace(forged, key_id=verifier_key.key_id,
                                     signature=verifier_key.sign(forged.canonical_bytes()))
        forger.publish(overlay_to_msg(forged, probe.now_ns()))
        assert probe.spin_until(
            lambda: oracle_counts(reports).get('overlays_refused') == '1', 30.0)

        # the situation escalates until the Gate follows release 1 and the verifier has it
        def escalated_and_verified():
            p = propose()
            d = decided(p)
            if d is None or d.action != GateDecision.ACTION_ESCALATE:
                return None
            assert GateDecision.REASON_COVERAGE_UNCERTAINTY in d.reasons
            assert d.signals[0].overlay_version == ''
            v = decided(p, GateDecision.SUBJECT_VERIFICATION)
            return p if v is not None and v.action == GateDecision.ACTION_ALLOW else None
        for _ in range(100):
            first = escalated_and_verified()
            if first is not None:
                break
        else:
            raise AssertionError(f'never escalated and verified: {decisions[-4:]}')

        # governance made overlay 1 from that answer and the Oracle applies it
        assert probe.spin_until(lambda: overlays and overlays[-1].number == 1, 10.0)
        genuine = overlays[-1]
        assert genuine.release_number == 1 and genuine.oracle_version == '1.0.0'

        def allowed_under_overlay():
            d = decided(propose())
            return d is not None and d.signals and d.signals[0].overlay_version == '1' and d
        assert probe.spin_until(allowed_under_overlay, 20.0)
        for _ in range(5):                   # the same situation no longer escalates
            d = decided(propose())
            assert d.action == GateDecision.ACTION_ALLOW, (d.action, list(d.reasons))
            s = d.signals[0]
            assert s.overlay_version == '1'
            assert s.coverage_uncertainty <= s.coverage_uncertainty_threshold

        # the genuine overlay replayed is stale: refused
        forger.publish(genuine)
        assert probe.spin_until(
            lambda: oracle_counts(reports).get('overlays_refused') == '2', 30.0)

        # on the record: the escalation, its verification (with the signed answer), the overlay
        def ledger_has():
            events = [r for r in recorded(ledger, kind='release') if r['event'] == 'overlay']
            mine = [r for r in recorded(ledger, kind='decision')
                    if r['proposal_id'] == first.proposal_id]
            return events, mine
        assert probe.spin_until(lambda: all(ledger_has()) and len(ledger_has()[1]) == 2, 10.0)
        events, mine = ledger_has()
        assert len(events) == 1 and events[0]['reason'].startswith('overlay 1 ')
        assert sorted((r['subject'], r['action']) for r in mine) == [
            ('PROPOSAL', 'ESCALATE'), ('VERIFICATION', 'ALLOW')]
    finally:
        odometry.close()
