"""The launch files, with the ros2 launch packages (launch, launch_ros, launch_pytest: present on a
ROS 2 install, absent from PyPI; skipped where they cannot be imported).

Described: flywheel.launch.py declares its arguments, starts every node of `flywheel up` from this
package, and with governance:=true starts governance and hands it to the lifecycle manager;
nav2_gate.launch.py and gazebo.launch.py build (Gazebo itself is not installable here: nothing of
it is run). Run (marked ros and slow, through launch_pytest): flywheel.launch.py with the embedded
sim brings the lifecycle nodes up, gates proposals into cmd_vel, and shuts everything down when
the Gate dies; with governance:=true the Oracle and the Gate follow governance, the robot stays
stopped without a release, and the launch ends when governance dies."""
from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time
from pathlib import Path

import pytest

_WHY = 'needs the ros2 launch packages (launch, launch_ros, launch_pytest), not on PyPI'
# launch_pytest first: it imports the real `launch`, where a bare `import launch` could find this
# repository's launch/ folder as a namespace package
launch_pytest = pytest.importorskip('launch_pytest', reason=_WHY)
pytest.importorskip('launch_ros', reason=_WHY)

from launch import LaunchContext, LaunchDescription  # noqa: E402
from launch.actions import (DeclareLaunchArgument, GroupAction,  # noqa: E402
                            IncludeLaunchDescription, RegisterEventHandler)
from launch.event_handlers import OnProcessExit, OnProcessStart, OnShutdown  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch.utilities import (normalize_to_list_of_substitutions,  # noqa: E402
                              perform_substitutions)
from launch_ros.actions import Node, PushROSNamespace  # noqa: E402

from flywheel.cli.graph import GRAPH, MANAGER  # noqa: E402
from test.conftest import CONFIG, REPO  # noqa: E402

pytestmark = pytest.mark.launch_file

LAUNCH = REPO / 'launch'


def load(name: str):
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def text(context: LaunchContext, value) -> str:
    """A launch argument or value (text or substitutions) as the launch would see it."""
    return perform_substitutions(context, normalize_to_list_of_substitutions(value))


def arguments(ld: LaunchDescription) -> dict[str, DeclareLaunchArgument]:
    return {e.name: e for e in ld.entities if isinstance(e, DeclareLaunchArgument)}


def started_nodes(ld: LaunchDescription, **args: str) -> list[Node]:
    """The Node actions a launch with ``args`` would start (conditions evaluated)."""
    context = LaunchContext()
    declared = arguments(ld)
    for name, declaration in declared.items():
        context.launch_configurations[name] = perform_substitutions(
            context, declaration.default_value)
    context.launch_configurations.update(args)

    def walk(entities):
        for entity in entities:
            condition = getattr(entity, 'condition', None)
            if condition is not None and not condition.evaluate(context):
                continue
            if isinstance(entity, Node):
                yield entity
            elif isinstance(entity, GroupAction):
                yield from walk(entity.get_sub_entities())
    return list(walk(ld.entities))


# -- described ----------------------------------------------------------------------------------

def test_flywheel_launch_declares_its_arguments():
    assert set(arguments(load('flywheel.launch.py').generate_launch_description())) == {
        'params_file', 'world', 'namespace', 'sim', 'governance', 'use_sim_time', 'log_level',
        'cmd_vel_in', 'cmd_vel', 'odom', 'robots'}


@pytest.mark.parametrize('governance', ['false', 'true'])
@pytest.mark.parametrize('sim', ['true', 'false'])
def test_flywheel_launch_starts_the_graph_of_flywheel_up(sim, governance):
    ld = load('flywheel.launch.py').generate_launch_description()
    nodes = started_nodes(ld, sim=sim, governance=governance)
    expected = {*GRAPH, MANAGER} | ({'governance'} if governance == 'true' else set())
    if sim == 'false':
        expected.discard('sim')
    assert sorted(n.node_executable for n in nodes) == sorted(f'{n}_node' for n in expected)
    assert {n.node_package for n in nodes} == {'alignment_flywheel'}


def test_robots_n_launches_the_fleet_of_flywheel_up():
    """robots:=3: the single-robot group is off, and the fleet is what `flywheel up --robots 3`
    starts (governance once at the root, governing every robot; each robot its own nodes and
    lifecycle manager in its namespace)."""
    module = load('flywheel.launch.py')
    ld = module.generate_launch_description()
    assert started_nodes(ld, robots='3', governance='true') == []
    context = LaunchContext()
    for name, declaration in arguments(ld).items():
        context.launch_configurations[name] = perform_substitutions(
            context, declaration.default_value)
    context.launch_configurations.update(robots='3', governance='true')
    groups = module.fleet_actions(context)
    by_namespace = {}
    for group in groups:
        entities = group.get_sub_entities()
        pushed = [text(context, e.namespace) for e in entities if isinstance(e, PushROSNamespace)]
        nodes = [e for e in entities if isinstance(e, Node)]
        by_namespace[pushed[0] if pushed else ''] = sorted(
            n.node_executable.removesuffix('_node') for n in nodes)
    assert by_namespace == {
        '': ['governance', MANAGER],
        **{f'/robot_{i}': sorted({*GRAPH, MANAGER}) for i in range(3)}}


def test_nav2_gate_launch_wires_the_gate_after_the_controller():
    module = load('nav2_gate.launch.py')
    ld = module.generate_launch_description()
    declared = arguments(ld)
    assert {'cmd_vel_in_topic', 'cmd_vel_out_topic', 'odom_topic', 'params_file', 'namespace',
            'use_sim_time', 'governance', 'log_level'} <= set(declared)
    context = LaunchContext()
    defaults = {name: perform_substitutions(context, d.default_value)
                for name, d in declared.items()}
    # nav2_collision_monitor's own defaults: the smoother's output in, the base's topic out
    assert defaults['cmd_vel_in_topic'] == 'cmd_vel_smoothed'
    assert defaults['cmd_vel_out_topic'] == 'cmd_vel'
    assert Path(defaults['params_file']).name == 'real_robot.yaml'
    context.launch_configurations.update(defaults)
    include = next(e for e in ld.entities if isinstance(e, IncludeLaunchDescription))
    passed = {text(context, k): text(context, v) for k, v in include.launch_arguments}
    assert passed['sim'] == 'false'
    assert (passed['cmd_vel_in'], passed['cmd_vel'], passed['odom']) == (
        'cmd_vel_smoothed', 'cmd_vel', 'odom')
    source = include.launch_description_source
    source.get_launch_description(context)           # it loads, and from beside this file
    assert Path(source.location).resolve() == LAUNCH / 'flywheel.launch.py'


def test_gazebo_launch_builds_without_gazebo():
    """Only the description: gz sim and ros_gz are looked up when it runs, and are not here."""
    ld = load('gazebo.launch.py').generate_launch_description()
    assert {'world', 'world_sdf', 'obstacle_height', 'gui', 'params_file', 'namespace',
            'governance', 'log_level'} == set(arguments(ld))
    include = next(e for e in ld.entities if isinstance(e, IncludeLaunchDescription))
    context = LaunchContext()
    passed = {text(context, k): v for k, v in include.launch_arguments}
    assert text(context, passed['sim']) == 'false'
    assert text(context, passed['use_sim_time']) == 'true'


# -- run ----------------------------------------------------------------------------------------

class Processes:
    """What the launch service started, exited and why it shut down (from its own events)."""

    def __init__(self):
        self.pids: dict[str, int] = {}
        self.exited: dict[str, int] = {}
        self.shutdown_reason: str | None = None
        self.lock = threading.Lock()

    def actions(self) -> list:
        return [RegisterEventHandler(OnProcessStart(on_start=self._started)),
                RegisterEventHandler(OnProcessExit(on_exit=self._exited)),
                RegisterEventHandler(OnShutdown(on_shutdown=self._shutdown))]

    def _started(self, event, context):
        with self.lock:
            self.pids[event.process_name.rsplit('-', 1)[0]] = event.pid

    def _exited(self, event, context):
        with self.lock:
            self.exited[event.process_name.rsplit('-', 1)[0]] = event.returncode

    def _shutdown(self, event, context):
        with self.lock:
            if self.shutdown_reason is None:
                self.shutdown_reason = str(event.reason)

    def all_exited(self) -> bool:
        with self.lock:
            return bool(self.pids) and set(self.exited) >= set(self.pids)


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def include(**args: str) -> IncludeLaunchDescription:
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH / 'flywheel.launch.py')),
        launch_arguments=args.items())


@pytest.fixture
def probe():
    rclpy = pytest.importorskip('rclpy')
    from rclpy.context import Context

    from test.ros.conftest import Probe
    context = Context()
    rclpy.init(context=context, domain_id=int(os.environ['ROS_DOMAIN_ID']), args=[])
    p = Probe(context)
    try:
        yield p
    finally:
        p.close()
        context.try_shutdown()


def wait_active(probe, node: str, timeout: float = 30.0) -> str | None:
    """Ask ``node`` for its lifecycle state until it is active (the manager brings the nodes up
    one after another); the last answer."""
    from lifecycle_msgs.srv import GetState
    client = probe.node.create_client(GetState, f'{node}/get_state')
    deadline = time.monotonic() + timeout
    state = None
    try:
        if not probe.spin_until(client.service_is_ready, timeout):
            return None
        while state != 'active' and time.monotonic() < deadline:
            future = client.call_async(GetState.Request())
            if probe.spin_until(future.done, 5.0):
                state = future.result().current_state.label
                if state != 'active':
                    probe.spin_for(0.1)       # not a synchronisation: the polling period
        return state
    finally:
        probe.node.destroy_client(client)


def parameter(probe, node: str, name: str):
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python
    client = probe.node.create_client(GetParameters, f'{node}/get_parameters')
    try:
        assert probe.spin_until(client.service_is_ready, 20.0), f'{node} has no parameters'
        future = client.call_async(GetParameters.Request(names=[name]))
        assert probe.spin_until(future.done, 10.0), f'{node} did not answer'
        return parameter_value_to_python(future.result().values[0])
    finally:
        probe.node.destroy_client(client)


def kill(processes: Processes, name: str) -> None:
    with processes.lock:
        pid = processes.pids[name]
    os.kill(pid, signal.SIGKILL)


def assert_launch_ended_because(processes: Processes, name: str) -> None:
    # SIGINT, then after 5 s SIGTERM, then SIGKILL: everything is gone well within 30 s
    assert wait_for(processes.all_exited, 30.0), (
        f'still running after {name} died: {sorted(set(processes.pids) - set(processes.exited))}')
    assert processes.shutdown_reason is not None and f'{name} exited' in processes.shutdown_reason


@launch_pytest.fixture
def sim_graph():
    processes = Processes()
    return LaunchDescription([
        *processes.actions(),
        include(sim='true', params_file=str(CONFIG / 'flywheel.yaml')),
        launch_pytest.actions.ReadyToTest(),
    ]), processes


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.launch(fixture=sim_graph)
def test_the_sim_graph_gates_proposals_and_ends_when_the_gate_dies(sim_graph, probe):
    from geometry_msgs.msg import Twist

    from alignment_flywheel.msg import GateDecision
    from flywheel.ros import qos, topics
    _, processes = sim_graph
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    commands = probe.collect(Twist, topics.CMD_VEL, qos.COMMAND)
    # the lifecycle manager brought the Oracle and the Gate up
    for node in ('oracle', 'verifier', 'gate'):
        assert wait_active(probe, node) == 'active', node

    def allowed():
        return [d for d in decisions if d.action == GateDecision.ACTION_ALLOW]
    assert probe.spin_until(allowed, 30.0), 'no proposal was allowed'
    assert probe.spin_until(lambda: any(c.linear.x != 0.0 for c in commands), 10.0), (
        'an allowed proposal never became a cmd_vel')
    assert allowed()[0].proposer_id == 'proposer'

    kill(processes, 'gate_node')
    assert_launch_ended_because(processes, 'gate')


@launch_pytest.fixture
def governed_graph(tmp_path):
    """governed.yaml with this test's own release store (governance starts without a release)."""
    import yaml
    params = yaml.safe_load((CONFIG / 'governed.yaml').read_text())
    params['/**/governance']['ros__parameters']['store_dir'] = str(tmp_path / 'releases')
    params_file = tmp_path / 'governed.yaml'
    params_file.write_text(yaml.safe_dump(params))
    processes = Processes()
    return LaunchDescription([
        *processes.actions(),
        include(sim='true', governance='true', params_file=str(params_file)),
        launch_pytest.actions.ReadyToTest(),
    ]), processes


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.launch(fixture=governed_graph)
def test_with_governance_the_robot_stays_stopped_until_a_release(governed_graph, probe):
    from geometry_msgs.msg import Twist

    from alignment_flywheel.msg import GateDecision
    from flywheel.ros import qos, topics
    _, processes = governed_graph
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    commands = probe.collect(Twist, topics.CMD_VEL, qos.COMMAND)
    for node in ('oracle', 'verifier', 'gate'):
        assert parameter(probe, node, 'follow_governance') is True, node
    for node in ('governance', 'oracle', 'verifier', 'gate'):
        assert wait_active(probe, node) == 'active', node
    # proposals keep coming from the planner and are decided, but nothing is accepted yet
    assert probe.spin_until(lambda: len(decisions) >= 20 and len(commands) >= 20, 30.0)
    assert not [d for d in decisions if d.action in (GateDecision.ACTION_ALLOW,
                                                     GateDecision.ACTION_DEGRADE)]
    assert not [c for c in commands if c.linear.x != 0.0 or c.angular.z != 0.0]

    kill(processes, 'governance_node')
    assert_launch_ended_because(processes, 'governance')


@launch_pytest.fixture
def nav2_gate():
    """nav2_gate.launch.py as a Kilted Nav2 system would use it (real_robot.yaml: TwistStamped
    in from the velocity smoother, TwistStamped out to the base)."""
    processes = Processes()
    return LaunchDescription([
        *processes.actions(),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(LAUNCH / 'nav2_gate.launch.py')),
            launch_arguments={'params_file': str(CONFIG / 'real_robot.yaml')}.items()),
        launch_pytest.actions.ReadyToTest(),
    ]), processes


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.launch(fixture=nav2_gate)
def test_nav2_gate_passes_the_controllers_command_to_the_base(nav2_gate, probe):
    from geometry_msgs.msg import TwistStamped

    from alignment_flywheel.msg import GateDecision
    from flywheel.ros import qos, topics
    from test.ros.conftest import OdometryFeed, wait_matched
    _, processes = nav2_gate
    assert 'sim_node' not in processes.pids
    decisions = probe.collect(GateDecision, topics.GATE_DECISIONS, qos.RECORDS)
    base = probe.collect(TwistStamped, 'cmd_vel', qos.COMMAND)
    controller = probe.node.create_publisher(TwistStamped, 'cmd_vel_smoothed', qos.COMMAND)
    odometry = OdometryFeed(probe, 1.5, 1.0, 0.0)      # the base's map-frame odometry
    try:
        wait_matched(probe, controller, 30.0)
        assert wait_active(probe, 'gate') == 'active'

        def command():
            msg = TwistStamped()
            msg.header.stamp = probe.node.get_clock().now().to_msg()
            msg.header.frame_id = 'base_link'
            msg.twist.linear.x = 0.3
            controller.publish(msg)
            # the controller's own 20 Hz pace, while listening
            return probe.spin_until(lambda: any(t.twist.linear.x == 0.3 for t in base), 0.05)
        assert any(command() for _ in range(400)), 'the command never reached the base'
        # the output process publishes the command as soon as it is approved, before the Gate
        # publishes the decision: wait for it
        assert probe.spin_until(
            lambda: any(d.action == GateDecision.ACTION_ALLOW for d in decisions), 5.0)
    finally:
        odometry.close()
