"""The governance lifecycle node and the operator CLI against it: push, status, refusals that leave
the active release untouched, signed rollback, inactive means deaf, restart keeps the release."""
from __future__ import annotations


import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from alignment_flywheel.msg import OracleRelease, OracleStatus
from alignment_flywheel.srv import SubmitRelease
from flywheel.errors import LedgerError
from flywheel.ros import topics
from flywheel.ros.convert import from_time
from test.audit.conftest import records_in
from test.conftest import CONFIG
from test.helpers import flywheel
from test.ros.test_hot_swap import releases  # noqa: F401 - the fixture

pytestmark = pytest.mark.ros


def recorded(ledger, **filters) -> list[dict]:
    """What the ledger holds so far (nothing while the audit node is still creating it)."""
    try:
        return records_in(ledger, **filters)
    except LedgerError:
        return []


def release_events(ledger) -> list[str]:
    return [r['event'] for r in recorded(ledger, kind='release')]


def stamp_ns(msg) -> int:
    return from_time(msg.header.stamp)


@pytest.fixture
def governance(start_graph, releases, tmp_path):  # noqa: F811
    root_path, bundles = releases
    params = {'store_dir': str(tmp_path / 'store'), 'trust_root_path': str(root_path)}
    paths = []
    for i, bundle in enumerate(bundles):
        path = tmp_path / f'r{i + 1}.tar.gz'
        path.write_bytes(bundle)
        paths.append(path)
    graph = start_graph(['governance'], {'governance': params})
    return paths, params, tmp_path, graph


def test_push_status_refuse_and_roll_back(governance, start_graph, probe):
    (r1, r2), _, tmp_path, _ = governance
    ledger = tmp_path / 'audit.sqlite'
    assert flywheel('release', 'push', str(r1)).returncode == 0
    # the audit starts late on purpose: governance's event stream keeps its history for it
    start_graph(['audit'], {'audit': {'ledger_path': str(ledger)}})
    done = flywheel('release', 'push', str(r2))
    assert done.returncode == 0 and 'swaps to 1.1.0' in done.stdout
    status = flywheel('status').stdout
    assert 'active Oracle 1.1.0 (release 2)' in status and 'previous 1.0.0' in status
    # a replay of release 1 is refused and changes nothing
    again = flywheel('release', 'push', str(r1))
    assert again.returncode == 1 and 'RollbackError' in again.stderr
    status = flywheel('status').stdout
    assert 'active Oracle 1.1.0' in status and 'last rejection: RollbackError' in status
    # a rollback signed by a stranger is refused; by an operator it goes through
    assert flywheel('keygen', str(tmp_path / 'mallory.pem')).returncode == 0
    stranger = flywheel('rollback', '--key', str(tmp_path / 'mallory.pem'))
    assert stranger.returncode == 1 and 'not a root operator key' in stranger.stderr
    ok = flywheel('rollback', '--key', str(tmp_path / 'alice.pem'))
    assert ok.returncode == 0 and 'swaps to 1.0.0' in ok.stdout
    assert 'active Oracle 1.0.0 (release 1)' in flywheel('status').stdout
    # every release event is on the audit record
    assert probe.spin_until(lambda: len(release_events(ledger)) >= 10, 10.0)
    kinds = release_events(ledger)
    assert kinds.count('installed') == 2 and kinds.count('rejected') == 2
    assert kinds.count('root_installed') == 1
    assert kinds.count('rolled_back') == 1


def test_lifecycle_transitions_are_on_the_audit_record(probe, start_graph, releases, tmp_path):  # noqa: F811
    """Every transition is recorded, those of an autostart in the first milliseconds included,
    whenever the audit starts: governance's event stream is numbered and keeps its history
    (this test failed 1 run in 5 when transitions were one-shot volatile messages)."""
    root_path, _ = releases
    ledger = tmp_path / 'audit.sqlite'
    start_graph(['governance'], {'governance': {
        'store_dir': str(tmp_path / 'store'), 'trust_root_path': str(root_path)}})
    change = probe.node.create_client(ChangeState, '/governance/change_state')
    assert change.wait_for_service(timeout_sec=30)
    future = change.call_async(ChangeState.Request(
        transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
    assert probe.spin_until(future.done, 10.0) and future.result().success
    start_graph(['audit'], {'audit': {'ledger_path': str(ledger)}})

    def transitions():
        return [r['reason'] for r in recorded(ledger, kind='lifecycle')
                if r.get('event') == 'transition']
    expected = ['configure: unconfigured -> inactive', 'activate: inactive -> active',
                'deactivate: active -> inactive']
    assert probe.spin_until(lambda: transitions() == expected, 20.0), transitions()
    assert not records_in(ledger, kind='gap')


def test_the_gate_counts_a_version_before_its_oracle_is_told_to_run_it(governance, probe):
    """A verdict of a new release must find the Gate already counting it: before every directive
    (push, push, rollback) governance's latest status already accepts the version it names. By
    governance's own clock, which stamps both, so the order of publishing is what is checked."""
    (r1, r2), _, tmp_path, _ = governance
    everything = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
    statuses = probe.collect(OracleStatus, topics.ORACLE_STATUS, everything)
    directives = probe.collect(OracleRelease, topics.ORACLE_RELEASE, everything)
    assert probe.spin_until(lambda: statuses, 30.0)          # the status reader is matched
    for step, version in ((('release', 'push', str(r1)), '1.0.0'),
                          (('release', 'push', str(r2)), '1.1.0'),
                          (('rollback', '--key', str(tmp_path / 'alice.pem')), '1.0.0')):
        seen = len(directives)
        assert flywheel(*step).returncode == 0
        assert probe.spin_until(lambda: len(directives) > seen, 10.0), f'no directive for {step}'
        directive = directives[-1]
        assert directive.oracle_version == version
        # statuses arrive in order: once a later one is here (the heartbeat's, at most 1 s),
        # every status governance published before the directive is here too
        assert probe.spin_until(
            lambda: any(stamp_ns(s) > stamp_ns(directive) for s in statuses), 5.0)
        before = [s for s in statuses if stamp_ns(s) <= stamp_ns(directive)]
        assert before, f'no status before the directive for {version}'
        latest = max(before, key=stamp_ns)
        assert version in latest.accepted_versions, (
            f'{step}: the Gate\'s latest word before the directive for {version} accepted only '
            f'{list(latest.accepted_versions)}')


def test_a_restart_comes_back_with_the_active_release(governance, start_graph):
    (r1, _), params, _, graph = governance
    assert flywheel('release', 'push', str(r1)).returncode == 0
    assert graph.stop()['governance'] == 0              # Ctrl-C, then a fresh process
    start_graph(['governance'], {'governance': params})
    assert 'active Oracle 1.0.0 (release 1)' in flywheel('status').stdout


def test_inactive_governance_accepts_nothing(probe, start_graph, releases, tmp_path):  # noqa: F811
    root_path, (r1, _) = releases
    ledger = tmp_path / 'audit.sqlite'
    start_graph(['audit'], {'audit': {'ledger_path': str(ledger)}})
    start_graph(['governance'], {'governance': {
        'store_dir': str(tmp_path / 'store'), 'trust_root_path': str(root_path),
        'autostart': False}})
    submit = probe.node.create_client(SubmitRelease, '/governance/submit_release')
    change = probe.node.create_client(ChangeState, '/governance/change_state')
    assert submit.wait_for_service(timeout_sec=30) and change.wait_for_service(timeout_sec=30)

    def call(client, request):
        future = client.call_async(request)
        assert probe.spin_until(future.done, 10.0)
        return future.result()

    request = SubmitRelease.Request()
    request.bundle = list(r1)
    refused = call(submit, request)
    assert not refused.accepted and refused.reason == 'governance is not active'
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        assert call(change, ChangeState.Request(transition=Transition(id=transition))).success
    assert call(submit, request).accepted
    assert call(change, ChangeState.Request(
        transition=Transition(id=Transition.TRANSITION_DEACTIVATE))).success
    assert call(submit, request).reason == 'governance is not active'
    # each refusal is on the record too

    def refusals():
        return [r for r in recorded(ledger, kind='release') if r['event'] == 'rejected'
                and r['reason'] == 'governance is not active']
    assert probe.spin_until(lambda: len(refusals()) == 2, 20.0)


def test_a_missing_trust_root_fails_configuration(start_graph, tmp_path):
    graph = start_graph(['governance'], {'governance': {
        'store_dir': str(tmp_path / 'store'), 'trust_root_path': str(tmp_path / 'missing.json')}})
    assert graph.processes['governance'].wait(timeout=30) == 2
    log = (tmp_path / 'logs' / 'governance.log').read_text()
    assert 'no trust root' in log


def test_submit_by_path_refuses_what_is_not_a_small_regular_file(governance, probe):
    (r1, _), _, tmp_path, _ = governance
    client = probe.node.create_client(SubmitRelease, '/governance/submit_release')
    assert client.wait_for_service(timeout_sec=30)

    def submit(path: str):
        future = client.call_async(SubmitRelease.Request(bundle_path=path))
        assert probe.spin_until(future.done, 10.0)
        return future.result()

    assert 'not a regular file' in submit('/dev/zero').reason
    assert 'cannot read' in submit(str(tmp_path / 'missing.tar.gz')).reason
    assert submit(str(r1)).accepted


def test_the_cli_reaches_a_namespaced_graph(releases, tmp_path):  # noqa: F811
    """Services sit under their node (/robot_1/governance/get_status), so two robots on one
    domain never answer for each other; the operator names the robot with --namespace."""
    from flywheel.cli.graph import Graph
    root_path, _ = releases
    with Graph(('governance',), CONFIG / 'flywheel.yaml', {'governance': {
            'store_dir': str(tmp_path / 'store'), 'trust_root_path': str(root_path)}},
            None, tmp_path / 'logs', namespace='/robot_1').start():
        status = flywheel('status', '--namespace', '/robot_1', '--timeout', '30')
        assert status.returncode == 0 and 'governance active' in status.stdout
        elsewhere = flywheel('status', '--timeout', '2')
        assert elsewhere.returncode == 3 and '/governance/get_status' in elsewhere.stderr
