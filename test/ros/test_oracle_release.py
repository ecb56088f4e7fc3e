"""Defence in depth: the Oracle node runs only what governance sends, signed by governance, in the
order governance sent it, and verifies every release again itself, whoever sent it."""
from __future__ import annotations

import dataclasses
from array import array
from datetime import datetime, timezone

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from alignment_flywheel.msg import OracleRelease, OracleRunning, Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals
from flywheel.auth import load_message_key
from flywheel.oracle.directive import Directive, running_bytes
from flywheel.release.bundle import build_bundle, read_bundle
from flywheel.ros import qos, topics
from test.conftest import KEYS
from test.ros.conftest import OdometryFeed, health, signed_bytes, values, wait_matched
from test.helpers import straight
from test.ros.test_hot_swap import releases  # noqa: F401 - the fixture

pytestmark = pytest.mark.ros


@pytest.fixture
def oracle_io(probe, start_graph, releases):  # noqa: F811
    root_path, bundles = releases
    start_graph(['oracle'], {'oracle': {'trust_root_path': str(root_path),
                                        'follow_governance': True}})
    io = dataclasses.make_dataclass('OracleIO', ['running', 'reports', 'pub', 'root', 'bundles',
                                                 'seq'])(
        probe.collect(OracleRunning, topics.ORACLE_RUNNING, qos.STATUS),
        probe.collect(DiagnosticArray, '/diagnostics', 10),
        probe.node.create_publisher(OracleRelease, topics.ORACLE_RELEASE, qos.STATUS),
        root_path.read_bytes(), bundles, [0])
    wait_matched(probe, io.pub)
    return io


def send(io, bundle: bytes, number: int, version: str, key='governance.pem', seq=None,
         rollback=False, candidate=None) -> None:
    """A directive; ``candidate`` = (bundle, number, version) to score beside the active one."""
    io.seq[0] += 1
    c_bundle, c_number, c_version = candidate or (b'', 0, '')
    d = Directive(77, seq if seq is not None else io.seq[0], number, version, rollback, bundle,
                  io.root, c_version, c_number, c_bundle, io.root if candidate else b'')
    if key:
        k = load_message_key(KEYS / key)
        d = dataclasses.replace(d, key_id=k.key_id, signature=k.sign(d.canonical_bytes()))
    io.pub.publish(OracleRelease(
        epoch=d.epoch, seq=d.seq, oracle_version=version, number=number, rollback=rollback,
        bundle=array('B', bundle), root=array('B', io.root), candidate_version=c_version,
        candidate_number=c_number, candidate_bundle=array('B', c_bundle),
        candidate_root=array('B', d.candidate_root), key_id=d.key_id,
        signature=list(d.signature)))


def refusals(io) -> list[str]:
    return [refusal for s in health(io.reports, 'oracle')
            if (refusal := values(s).get('last_release_refusal'))]


def refused(probe, io, problem: str) -> None:
    assert probe.spin_until(lambda: any(problem in r for r in refusals(io)), 10.0), refusals(io)


def test_nothing_is_scored_until_governance_sends_a_release(probe, oracle_io):
    verdicts = probe.collect(SafetySignals, topics.SAFETY_SIGNALS, qos.STREAM)
    pub = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    wait_matched(probe, pub)
    odometry = OdometryFeed(probe, 1.5, 1.0, 0.0)
    try:
        _, raw = signed_bytes(straight(1.5, 1.0, 0.0, 0.5, stamp_ns=probe.now_ns()),
                              load_message_key(KEYS / 'proposer.pem'))
        pub.publish(raw)
        assert probe.spin_until(lambda: any(
            s.message.startswith('no release from governance')
            for s in health(oracle_io.reports, 'oracle')), 10.0)
        send(oracle_io, oracle_io.bundles[0], 1, '1.0.0')
        assert probe.spin_until(lambda: oracle_io.running, 10.0)
        _, raw = signed_bytes(straight(1.5, 1.0, 0.0, 0.5, seq=2, stamp_ns=probe.now_ns()),
                              load_message_key(KEYS / 'proposer.pem'))
        pub.publish(raw)
        assert probe.spin_until(lambda: verdicts, 10.0)
        assert [v.oracle_version for v in verdicts] == ['1.0.0'] and verdicts[0].signature
    finally:
        odometry.close()


def test_an_unsigned_bundle_is_refused_even_in_a_signed_directive(probe, oracle_io):
    spec = read_bundle(oracle_io.bundles[1])['oracle_spec.yaml']
    send(oracle_io, build_bundle(spec, 2, datetime(2099, 1, 1, tzinfo=timezone.utc)), 2,
         '1.1.0')
    refused(probe, oracle_io, 'UnsignedRelease')
    assert not oracle_io.running


@pytest.mark.parametrize('key', ['', 'oracle.pem'])
def test_a_directive_not_signed_by_governance_is_refused(probe, oracle_io, key):
    send(oracle_io, oracle_io.bundles[1], 2, '1.1.0', key=key)
    refused(probe, oracle_io, 'not a governance key' if key else 'unsigned')
    assert not oracle_io.running


def test_directives_apply_in_order_and_never_go_back_without_a_rollback(probe, oracle_io):
    v100, v110 = oracle_io.bundles
    send(oracle_io, v110, 2, '1.1.0', seq=10)
    assert probe.spin_until(
        lambda: oracle_io.running and oracle_io.running[-1].active_version == '1.1.0', 10.0)
    send(oracle_io, v100, 1, '1.0.0', seq=5)              # a replayed, older directive
    refused(probe, oracle_io, 'not newer')
    send(oracle_io, v100, 1, '1.0.0', seq=11)             # newer, but not a rollback
    refused(probe, oracle_io, 'not a rollback')
    send(oracle_io, v100, 1, '1.0.0', seq=12, rollback=True)
    assert probe.spin_until(lambda: oracle_io.running[-1].active_version == '1.0.0', 10.0)


def test_a_candidate_is_scored_beside_the_active_release(probe, oracle_io):
    """Staged rollout: two signed verdicts per proposal, and a signed report naming both."""
    v100, v110 = oracle_io.bundles
    send(oracle_io, v100, 1, '1.0.0', candidate=(v110, 2, '1.1.0'))
    assert probe.spin_until(lambda: oracle_io.running
                            and oracle_io.running[-1].candidate_version == '1.1.0', 10.0)
    report = oracle_io.running[-1]
    key = load_message_key(KEYS / 'oracle.pem')
    key.private.public_key().verify(bytes(report.signature), running_bytes(
        report.epoch, report.seq, report.active_version, report.active_number,
        report.candidate_version, report.candidate_number))
    verdicts = probe.collect(SafetySignals, topics.SAFETY_SIGNALS, qos.STREAM)
    pub = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
    wait_matched(probe, pub)

    def both():
        return {v.oracle_version for v in verdicts} == {'1.0.0', '1.1.0'}
    for seq in range(1, 30):
        _, raw = signed_bytes(straight(1.5, 1.0, 0.0, 0.5, seq=seq, stamp_ns=probe.now_ns()),
                              load_message_key(KEYS / 'proposer.pem'))
        pub.publish(raw)
        if probe.spin_until(both, 0.5):
            break
    assert both() and all(len(v.signature) == 64 for v in verdicts)


def test_a_candidate_not_newer_than_the_active_release_is_refused(probe, oracle_io):
    v100, v110 = oracle_io.bundles
    send(oracle_io, v110, 2, '1.1.0', candidate=(v100, 1, '1.0.0'))
    refused(probe, oracle_io, 'not newer than the active')
