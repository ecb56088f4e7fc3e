"""Staged rollout over real nodes (governance, Oracle, Gate, audit): a good candidate earns its way
shadow -> canary -> full; a candidate that would approve a known collision is stopped in shadow
with no unsafe command executed; a candidate that blocks golden proposals is refused by its
regression suite; an operator aborts mid-canary; a governance killed mid-canary resumes there.
A Gate in shadow or canary keeps both releases' verdicts on a proposal they overtook: the shadow
record is still made, and a canary proposal still gets its pair. A Gate that hears no governance
status subscribes again."""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from securesystemslib.signer import SSlibKey

from alignment_flywheel.msg import GateDecision, OracleStatus
from alignment_flywheel.msg import Proposal as ProposalMsg
from flywheel.auth import assign_signers, load_message_key
from flywheel.provision import NODE_KEYS
from flywheel.release.bundle import build_bundle, sign_bundle
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import new_root, sign
from flywheel.oracle_status import OracleStatus as Status
from flywheel.ros import qos, topics
from flywheel.ros.convert import status_to_msg
from flywheel.ros.gate_node import STATUS_SILENCE_S
from flywheel.wire import encode_proposal
from test.audit.conftest import records_in
from test.conftest import CONFIG, KEYS
from test.helpers import flywheel, straight
from test.ros.conftest import (GateIO, OdometryFeed, decision_for, health, values,
                               wait_matched)

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PLAN = b'''stages: [shadow, canary, full]
canary_robots: 1
rules:
  shadow: {min_duration_s: 1.5, min_samples: 40, max_duration_s: 60.0, max_disagreement_rate: 0.2,
           max_false_stop_rate: 0.2, max_latency_p99_s: 0.5, max_errors: 0}
  canary: {min_duration_s: %s, min_samples: 40, max_duration_s: 600.0,
           max_disagreement_rate: 0.2, max_false_stop_rate: 0.2, max_latency_p99_s: 0.5,
           max_errors: 0}
'''
GOLDEN = b'''golden:
  - {id: east_along_y1, start: [1.5, 1.0, 0.0], twist: [0.5, 0.0], points: 20, dt: 0.1}
incidents:
  - {id: into_shelf_a, start: [3.0, 4.0, 0.0], twist: [0.9, 0.0], points: 20, dt: 0.1}
'''
BASE = (CONFIG / 'oracle_spec.yaml').read_text()


def spec(version: str, without_shelf=False, keep_out_on_route=False) -> bytes:
    text = BASE.replace('version: "1.0.0"', f'version: "{version}"', 1)
    if without_shelf:
        text = text.replace(
            '  - {id: shelf_a, polygon: [[4.0, 2.5], [5.0, 2.5], [5.0, 5.5], [4.0, 5.5]]}\n', '')
    if keep_out_on_route:
        text = text.replace('keep_out:\n', 'keep_out:\n  - {id: blocks_the_route, polygon: '
                            '[[2.2, 0.6], [3.0, 0.6], [3.0, 1.4], [2.2, 1.4]]}\n', 1)
    return text.encode()


@pytest.fixture
def desk(tmp_path):
    """Two operators' keys and a 2-of-2 root naming this machine's node keys."""
    signers = []
    for name in ('alice', 'bob'):
        generate_key(tmp_path / f'{name}.pem')
        signers.append(load_signer(tmp_path / f'{name}.pem'))
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    root = new_root([s.public_key for s in signers], 2, 2, expires)
    node = {role: SSlibKey.from_crypto(load_message_key(KEYS / name).private.public_key())
            for role, name in NODE_KEYS.items()}
    assign_signers(root.signed, [node['oracle']], [node['governance']],
                   {'proposer': [node['proposer']]})
    for s in signers:
        sign(root, s)
    (tmp_path / 'root.json').write_bytes(root.to_bytes())

    def release(number: int, spec_bytes: bytes, plan: bytes | None = None,
                regression: bytes | None = None):
        bundle = build_bundle(spec_bytes, number, expires, plan=plan, regression=regression)
        for s in signers:
            bundle = sign_bundle(bundle, s)
        path = tmp_path / f'r{number}.tar.gz'
        path.write_bytes(bundle)
        return path
    return tmp_path, release


class Stream:
    """Signed proposals at 50 Hz from a thread, from where the robot stands."""

    def __init__(self, probe, x, y, v):
        self.pub = probe.node.create_publisher(ProposalMsg, topics.PROPOSALS, qos.STREAM)
        self.key, self.epoch, self.seq = load_message_key(KEYS / 'proposer.pem'), time.time_ns(), 0
        self.probe, self.start = probe, (x, y, v)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.02):
            self.seq += 1
            x, y, v = self.start
            p = dataclasses.replace(straight(x, y, 0.0, v, seq=self.seq,
                                             stamp_ns=self.probe.now_ns()), epoch=self.epoch)
            try:
                self.pub.publish(encode_proposal(p, self.key))
            except Exception:  # noqa: BLE001 - torn down
                return

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2.0)


@pytest.fixture
def governed(probe, start_graph, desk):
    tmp_path, release = desk
    root = str(tmp_path / 'root.json')
    params = {'governance': {'store_dir': str(tmp_path / 'store'), 'trust_root_path': root},
              'oracle': {'trust_root_path': root, 'follow_governance': True},
              'gate': {'trust_root_path': root, 'follow_governance': True},
              'audit': {'ledger_path': str(tmp_path / 'audit.sqlite')}}
    graph = start_graph(['audit', 'governance', 'oracle', 'gate'], params)
    statuses = probe.collect(OracleStatus, topics.ORACLE_STATUS, qos.STATUS)
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    reports = probe.collect(DiagnosticArray, '/diagnostics', 100)
    assert flywheel('release', 'push', str(release(1, spec('1.0.0'))), '--timeout',
                    '30').returncode == 0
    # the Gate follows governance (it says so on /diagnostics) before anything is driven
    assert probe.spin_until(lambda: accepted_by_gate(reports) == '1.0.0',
                            2 * STATUS_SILENCE_S + 10.0), \
        [s.message for s in health(reports, 'gate')]
    streams = []

    def drive(x=1.5, y=1.0, v=0.5):
        feed = OdometryFeed(probe, x, y, 0.0)
        stream = Stream(probe, x, y, v)
        streams.extend([feed, stream])
        pub = stream.pub
        wait_matched(probe, pub)
    yield dataclasses.make_dataclass('Governed', ['graph', 'params', 'statuses', 'decisions',
                                                  'release', 'drive', 'tmp'])(
        graph, params, statuses, decisions, release, drive, tmp_path)
    for s in streams:
        s.close()


def accepted_by_gate(reports) -> str | None:
    """The Oracle versions the Gate accepts, by its latest report."""
    gate = health(reports, 'gate')
    return values(gate[-1]).get('accepted_oracle_versions') if gate else None


def stage_of(statuses) -> int | None:
    return statuses[-1].stage if statuses else None


def events(ledger) -> list[str]:
    try:
        return [r['event'] for r in records_in(ledger, kind='release')]
    except Exception:  # noqa: BLE001 - not created yet
        return []


def test_a_good_candidate_goes_shadow_canary_full(probe, governed):
    g = governed
    g.drive()
    assert flywheel('release', 'push', str(g.release(2, spec('1.1.0'), PLAN % b'1.5')),
                    '--timeout', '30').returncode == 0
    assert probe.spin_until(lambda: stage_of(g.statuses) == OracleStatus.STAGE_SHADOW, 20.0)
    assert probe.spin_until(lambda: stage_of(g.statuses) == OracleStatus.STAGE_CANARY, 30.0)
    canary = [d for d in g.decisions if len(d.signals) == 2]
    assert probe.spin_until(lambda: [d for d in g.decisions if len(d.signals) == 2], 10.0)
    assert probe.spin_until(lambda: g.statuses[-1].active_version == '1.1.0'
                            and g.statuses[-1].stage == OracleStatus.STAGE_NONE, 30.0)
    ledger = g.tmp / 'audit.sqlite'
    assert probe.spin_until(lambda: 'promoted' in events(ledger), 20.0)
    timeline = events(ledger)
    assert timeline.index('stage_started') < timeline.index('stage_passed') < \
        timeline.index('promoted')
    assert not canary or all(d.signal_actions[0] == d.signal_actions[1] for d in canary)


def test_a_candidate_that_would_approve_a_collision_is_stopped_in_shadow(probe, governed):
    g = governed
    g.drive(3.0, 4.0, 0.9)                           # straight into shelf_a
    assert flywheel('release', 'push', str(g.release(2, spec('1.1.0', without_shelf=True),
                                                     PLAN % b'1.5')),
                    '--timeout', '30').returncode == 0
    ledger = g.tmp / 'audit.sqlite'
    assert probe.spin_until(lambda: 'aborted' in events(ledger), 30.0)
    assert probe.spin_until(lambda: g.statuses and g.statuses[-1].active_version == '1.0.0'
                            and not g.statuses[-1].candidate_version, 10.0)
    # the first shadow record can abort the rollout before the push command returns: wait for
    # the records (kept for late joiners) rather than assume they are in
    assert probe.spin_until(lambda: [
        d for d in g.decisions if d.subject == GateDecision.SUBJECT_SHADOW and d.action in (
            GateDecision.ACTION_ALLOW, GateDecision.ACTION_DEGRADE)], 10.0)   # recorded only
    # not one unsafe command: every proposal's decision blocked it
    assert not [d for d in g.decisions if d.subject == GateDecision.SUBJECT_PROPOSAL
                and d.command_published and d.command.linear.x > 0]


def test_a_candidate_that_blocks_golden_proposals_is_refused(probe, governed):
    g = governed
    refused = flywheel('release', 'push', str(g.release(
        2, spec('1.1.0', keep_out_on_route=True), PLAN % b'1.5', GOLDEN)), '--timeout', '30')
    assert refused.returncode == 1 and 'east_along_y1' in refused.stderr
    assert 'RegressionFailed' in refused.stderr


def test_an_operator_aborts_mid_canary(probe, governed):
    g = governed
    g.drive()
    assert flywheel('release', 'push', str(g.release(2, spec('1.1.0'), PLAN % b'600')),
                    '--timeout', '30').returncode == 0
    assert probe.spin_until(lambda: stage_of(g.statuses) == OracleStatus.STAGE_CANARY, 30.0)
    stranger = g.tmp / 'mallory.pem'
    assert flywheel('keygen', str(stranger)).returncode == 0
    assert flywheel('rollout', 'abort', '--key', str(stranger)).returncode == 1
    done = flywheel('rollout', 'abort', '--key', str(g.tmp / 'alice.pem'))
    assert done.returncode == 0, done.stderr
    assert probe.spin_until(lambda: not g.statuses[-1].candidate_version, 10.0)
    assert g.statuses[-1].active_version == '1.0.0'


def test_governance_killed_mid_canary_resumes_in_canary(probe, governed, start_graph):
    g = governed
    g.drive()
    assert flywheel('release', 'push', str(g.release(2, spec('1.1.0'), PLAN % b'600')),
                    '--timeout', '30').returncode == 0
    assert probe.spin_until(lambda: stage_of(g.statuses) == OracleStatus.STAGE_CANARY, 30.0)
    process = g.graph.processes['governance']
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    epoch = g.statuses[-1].epoch
    start_graph(['governance'], {'governance': g.params['governance']})
    assert probe.spin_until(lambda: g.statuses[-1].epoch != epoch, 30.0)
    resumed = g.statuses[-1]
    assert resumed.stage == OracleStatus.STAGE_CANARY and resumed.active_version == '1.0.0'
    assert resumed.candidate_version == '1.1.0'
    assert probe.spin_until(lambda: 'resumed' in events(g.tmp / 'audit.sqlite'), 20.0)


# -- verdicts that overtake their proposal, in shadow and canary (a Gate and a test Oracle) -------

@pytest.fixture
def staged_gate(probe, start_graph, spec):
    """A Gate following governance, told by a governance-signed status that 1.0.0 is active and
    1.1.0 on trial in the stage asked for; the test publishes both releases' verdicts."""
    io = GateIO.start(probe, start_graph, spec, {'follow_governance': True})
    status_pub = probe.node.create_publisher(OracleStatus, topics.ORACLE_STATUS, qos.STATUS)
    governance = load_message_key(KEYS / NODE_KEYS['governance'])
    epoch, seq = time.time_ns(), iter(range(1, 1000))

    def stage(stage: int) -> None:
        s = Status(epoch, next(seq), time.time_ns(), 'active', '1.0.0', 1, '', 0, 2, '1.0.0',
                   ('1.0.0',), 1, b'', '', candidate_version='1.1.0', candidate_number=2,
                   stage=stage, key_id=governance.key_id)
        s = dataclasses.replace(s, signature=governance.sign(s.canonical_bytes()))
        status_pub.publish(status_to_msg(s))

    def believed(stage_now: int) -> None:
        """Re-send the status until a proposal is decided on 1.0.0 in that stage (the Gate heard
        it): in shadow by the active verdict alone, in canary by the pair."""
        for _ in range(50):
            stage(stage_now)
            p = io.propose()
            io.verdict(p)
            if stage_now == OracleStatus.STAGE_CANARY:
                io.verdict(p, oracle_version='1.1.0')
            d = decision_for(io, p)
            if d.action == GateDecision.ACTION_ALLOW and len(d.signals) == (
                    2 if stage_now == OracleStatus.STAGE_CANARY else 1):
                io.decisions.clear()
                return
            probe.spin_for(0.1)
        raise AssertionError(f'the gate never took the status (stage {stage_now})')
    io.believed = believed
    yield io
    io.odometry.close()


def overtaken(io: GateIO):
    """A proposal whose two verdicts (the active release's, then the candidate's) reach the Gate
    before it does, as they do when the Oracle is quicker than the proposal's own delivery."""
    p = io.make()
    io.verdict(p)
    io.verdict(p, oracle_version='1.1.0')
    io.probe.spin_for(0.05)
    io.proposals.publish(io.raw[p.proposal_id])
    return p


def test_in_shadow_a_candidate_verdict_that_overtakes_its_proposal_is_still_recorded(
        probe, staged_gate):
    io = staged_gate
    io.believed(OracleStatus.STAGE_SHADOW)
    p = overtaken(io)
    d = decision_for(io, p)
    assert d.action == GateDecision.ACTION_ALLOW and d.signals[0].oracle_version == '1.0.0'
    assert probe.spin_until(lambda: [r for r in io.decisions_for(p)
                                     if r.subject == GateDecision.SUBJECT_SHADOW], 2.0), \
        'the candidate\'s verdict on the proposal it overtook was dropped: no SHADOW record'
    shadow, = [r for r in io.decisions_for(p) if r.subject == GateDecision.SUBJECT_SHADOW]
    assert shadow.signals[0].oracle_version == '1.1.0'


def test_in_canary_both_verdicts_that_overtake_their_proposal_decide_it(probe, staged_gate):
    io = staged_gate
    io.believed(OracleStatus.STAGE_CANARY)
    p = overtaken(io)
    d = decision_for(io, p)
    assert GateDecision.REASON_NO_VERDICT not in d.reasons, d.reasons
    assert d.action == GateDecision.ACTION_ALLOW
    assert [v.oracle_version for v in d.signals] == ['1.0.0', '1.1.0']
    probe.spin_for(0.5)
    assert [r.subject for r in io.decisions_for(p)] == [GateDecision.SUBJECT_PROPOSAL]


def test_a_gate_that_hears_no_governance_status_says_so_and_subscribes_again(probe, staged_gate):
    """The status a Gate lost (as one did under `make stress`) is recovered: after
    STATUS_SILENCE_S without one the Gate warns, with how many publishers its reader matched, and
    subscribes again; the new reader takes the next status."""
    io = staged_gate
    reports = probe.collect(DiagnosticArray, '/diagnostics', 100)

    def warnings():
        return [s for s in health(reports, 'gate') if 'subscribed again' in s.message]
    assert probe.spin_until(warnings, STATUS_SILENCE_S + 10.0), \
        [s.message for s in health(reports, 'gate')]
    warned = warnings()[0]
    assert warned.level >= DiagnosticStatus.WARN
    assert re.search(r'no governance status for \d+s \(\d+ publisher\(s\) matched on '
                     + re.escape(f'/{topics.ORACLE_STATUS}') + r'\)', warned.message), \
        warned.message
    assert values(warned)['status_resubscribed'] == '1'
    io.believed(OracleStatus.STAGE_SHADOW)
    assert probe.spin_until(lambda: accepted_by_gate(reports) == '1.0.0', 5.0)
