"""Patch locality, end to end: a signed release pushed to a running graph is enforced within a
second, at 50 Hz not one proposal goes undecided or is decided on a retired release's verdict, a
trajectory allowed before the patch is blocked after it, and the Proposer process never restarts."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from securesystemslib.signer import SSlibKey

from alignment_flywheel.msg import GateDecision, OracleStatus
from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.srv import SubmitRelease
from flywheel.auth import assign_signers, load_message_key
from flywheel.provision import NODE_KEYS
from flywheel.release.bundle import build_bundle, sign_bundle
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import new_root, sign
from flywheel.ros import qos, topics
from flywheel.ros.convert import to_time
from test.conftest import CONFIG, KEYS
from test.ros.conftest import wait_matched

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PERIOD = 0.02
IMMEDIATE_PLAN = b'stages: [full]\n'
SPILL = '  - {id: spill_patch, polygon: [[2.2, 0.8], [2.6, 0.8], [2.6, 1.2], [2.2, 1.2]]}\n'
BAD_REASONS = {GateDecision.REASON_UNKNOWN_ORACLE_VERSION, GateDecision.REASON_NO_VERDICT,
               GateDecision.REASON_STALE_VERDICT, GateDecision.REASON_STALE_PROPOSAL,
               GateDecision.REASON_UNKNOWN_PROPOSAL}


@pytest.fixture
def releases(tmp_path):
    signers = []
    for name in ('alice', 'bob', 'carol'):
        generate_key(tmp_path / f'{name}.pem')
        signers.append(load_signer(tmp_path / f'{name}.pem'))
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    root = new_root([s.public_key for s in signers], 2, 2, expires)
    # the node keys this machine's nodes sign with (provisioned for the test session)
    node = {role: SSlibKey.from_crypto(load_message_key(KEYS / name).private.public_key())
            for role, name in NODE_KEYS.items()}
    assign_signers(root.signed, [node['oracle']], [node['governance']],
                   {'proposer': [node['proposer']]})
    for signer in signers[:2]:
        sign(root, signer)
    root_path = tmp_path / 'root.json'
    root_path.write_bytes(root.to_bytes())
    base = (CONFIG / 'oracle_spec.yaml').read_text()
    patched = base.replace('version: "1.0.0"', 'version: "1.1.0"', 1).replace(
        'keep_out:\n', 'keep_out:\n' + SPILL, 1)
    bundles = []
    for number, text in ((1, base), (2, patched)):
        # installed at once (a signed plan may skip the staged rollout: test_rollout.py runs it)
        bundle = build_bundle(text.encode(), number, expires,
                              parent='1.0.0' if number == 2 else '', plan=IMMEDIATE_PLAN)
        for signer in signers[1:]:
            bundle = sign_bundle(bundle, signer)
        bundles.append(bundle)
    return root_path, bundles


def test_a_pushed_patch_is_enforced_without_restarting_the_proposer(probe, start_graph,
                                                                     releases, tmp_path):
    root_path, (v100, v110) = releases
    graph = start_graph(['governance', 'oracle', 'gate', 'proposer'], {
        'governance': {'store_dir': str(tmp_path / 'store'), 'trust_root_path': str(root_path)},
        'oracle': {'trust_root_path': str(root_path), 'follow_governance': True},
        'gate': {'trust_root_path': str(root_path), 'follow_governance': True},
        'proposer': {'mode': 'adapter'}})
    proposer_pid = graph.processes['proposer'].pid
    proposals = probe.collect(ProposalMsg, topics.PROPOSALS, qos.STREAM, stamp=True)
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.STREAM, stamp=True)
    statuses = probe.collect(OracleStatus, topics.ORACLE_STATUS, qos.STATUS)
    odom_pub = probe.node.create_publisher(Odometry, topics.ODOM, qos.SENSOR)
    twist_pub = probe.node.create_publisher(Twist, topics.CMD_VEL_IN, qos.COMMAND)
    client = probe.node.create_client(SubmitRelease, '/governance/submit_release')
    assert client.wait_for_service(timeout_sec=30.0)
    wait_matched(probe, twist_pub)
    odom = Odometry()
    odom.header.frame_id = 'map'
    odom.pose.pose.position.x, odom.pose.pose.position.y = 1.5, 1.0
    odom.pose.pose.orientation.w = 1.0
    twist = Twist()
    twist.linear.x = 0.5
    next_at = time.monotonic()

    def drive(until, timeout):
        """Publish odom + an external command at 50 Hz until ``until()`` or timeout."""
        nonlocal next_at
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            if time.monotonic() >= next_at:
                odom.header.stamp = to_time(probe.now_ns())
                odom_pub.publish(odom)
                twist_pub.publish(twist)
                next_at += PERIOD
            probe.executor.spin_once(timeout_sec=0.002)
        return until()

    def submit(bundle):
        request = SubmitRelease.Request()
        request.bundle = list(bundle)
        future = client.call_async(request)
        assert drive(future.done, 10.0), 'governance did not answer'
        return future.result()

    def allowed_under(version):
        return lambda: sum(1 for _, d in decisions[-30:] if d.oracle_version == version
                           and d.action == GateDecision.ACTION_ALLOW) >= 20

    assert submit(v100).accepted
    assert drive(allowed_under('1.0.0'), 30.0), 'release 1.0.0 never drove the graph'
    mark = time.monotonic()
    drive(lambda: time.monotonic() - mark > 1.0, 2.0)          # a second of steady state
    reply = submit(v110)
    pushed = time.monotonic()
    assert reply.accepted and reply.oracle_version == '1.1.0', reply.reason

    def blocked_under_patch():
        return [t for t, d in decisions if t > pushed and d.oracle_version == '1.1.0'
                and d.action == GateDecision.ACTION_BLOCK]
    assert drive(lambda: len(blocked_under_patch()) >= 50, 10.0), 'the patch was not enforced'
    enforced_after = blocked_under_patch()[0] - pushed
    end = time.monotonic()
    drive(lambda: time.monotonic() - end > 0.5, 1.0)           # let the last ones be decided

    # every proposal from the mark until shortly before the end got exactly one decision
    window = {p.proposal_id for t, p in proposals if mark <= t <= end}
    decided: dict[str, list] = {}
    for _, d in decisions:
        if d.subject == GateDecision.SUBJECT_PROPOSAL:
            decided.setdefault(d.proposal_id, []).append(d)
    assert len(window) >= 75                    # about two seconds at 50 Hz
    bad = {pid: [(d.action, list(d.reasons), d.oracle_version) for d in decided.get(pid, [])]
           for pid in window if len(decided.get(pid, [])) != 1}
    assert not bad, f'{len(bad)} of {len(window)} proposals not decided exactly once: {bad}'
    verdicts = [decided[pid][0] for pid in window]
    assert not [d for d in verdicts if set(d.reasons) & BAD_REASONS], 'a verdict did not bind'
    assert {d.oracle_version for d in verdicts} == {'1.0.0', '1.1.0'}
    for d in verdicts:
        if d.oracle_version == '1.0.0':
            assert d.action == GateDecision.ACTION_ALLOW
        else:
            assert d.action == GateDecision.ACTION_BLOCK
            assert GateDecision.REASON_COLLISION_RISK in d.reasons
    assert enforced_after < 1.0, f'patch enforced only after {enforced_after:.2f} s'
    # the old version stops counting once the Oracle runs the new one
    assert statuses[-1].accepted_versions == ['1.1.0'] and statuses[-1].previous_version == '1.0.0'
    assert graph.processes['proposer'].poll() is None
    assert graph.processes['proposer'].pid == proposer_pid
