"""Start the alignment_flywheel graph: sim (optional), audit, governance (optional), Oracle,
verifier, Gate, their lifecycle manager, Proposer; the same nodes and parameters as `flywheel up`.

    ros2 launch alignment_flywheel flywheel.launch.py [params_file:=...] [sim:=false]
        [governance:=true] [namespace:=robot1] [use_sim_time:=true] [log_level:=debug]
        [world:=/path/to/world.yaml] [cmd_vel_in:=...] [cmd_vel:=...] [odom:=...]
        [robots:=N]

Invariants:
- the Oracle, the verifier, the Gate (and governance) are lifecycle nodes brought up in order by
  the lifecycle manager, exactly as `flywheel up` does (flywheel.cli.graph.managed_overrides is the
  one definition of both): the Gate last, so it passes nothing before what it depends on runs;
- the launch shuts down when the Gate, the Oracle, the verifier, governance or the lifecycle
  manager exits (as nav2 bringup does for its essential processes, with Shutdown on exit): a
  safety layer with a dead member is not left half running, and the Gate's own shutdown
  publishes stop;
- with governance:=true the Oracle, the verifier and the Gate run with follow_governance: true,
  whatever params_file says: with governance absent or failed nothing is accepted and the robot
  stays stopped, rather than running a spec governance never approved. (With governance:=false the
  file decides, so a governance node running elsewhere can still be followed.)

With sim:=false bring your own robot or a Gazebo bridge (gazebo.launch.py): it must publish
nav_msgs/Odometry in the `map` frame on `odom` and execute `cmd_vel` (Twist, or TwistStamped with
the Gate's `stamped: true`). cmd_vel_in, cmd_vel and odom rename those topics for every node;
all names are relative, so `namespace` moves the whole graph.

robots:=N (N >= 1) starts a fleet instead, exactly as `flywheel up --robots N` does (the same
flywheel.cli.graph.fleet): every robot's nodes in namespace robot_0 ... robot_{N-1}, each robot
with its own lifecycle manager and audit ledger, and one governance node at the root (with
governance:=true) that governs them all; `namespace` is then not used. A fleet with more DDS
participants than the host-only UDP profile discovers gets a widened copy of it, as with `flywheel
up` (flywheel.ros.transport.widen_discovery).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from pathlib import Path

from launch.actions import (DeclareLaunchArgument, GroupAction, LogInfo, OpaqueFunction,
                            SetEnvironmentVariable, Shutdown)
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node, PushROSNamespace, SetParameter, SetRemap

from flywheel.cli.graph import (GRAPH, LIFECYCLE, MANAGER, fleet, managed_overrides,
                                participants, robot_namespaces, ros_home)
from flywheel.ros.transport import widen_discovery

PACKAGE = 'alignment_flywheel'

# name, default, description (a default of None is filled in from the package share directory)
ARGUMENTS = (
    ('params_file', None, 'Parameters of every node (config/flywheel.yaml; real_robot.yaml and '
     'governed.yaml are the other deployment shapes).'),
    ('world', 'world.yaml', "The embedded sim's world YAML (overrides the sim's world_path; "
     "relative paths resolve against the package's config directory)."),
    ('namespace', '', 'Namespace of every node and (relative) topic.'),
    ('sim', 'true', 'Start the embedded 2D world (false: a real robot or Gazebo provides odom '
     'and takes cmd_vel).'),
    ('governance', 'false', 'Start the governance node and make the Oracle, the verifier and the '
     'Gate follow it (follow_governance: true).'),
    ('use_sim_time', 'false', 'Every node takes time from /clock (Gazebo).'),
    ('log_level', 'info', 'ROS log level of every node.'),
    ('cmd_vel_in', 'cmd_vel_in', "The external planner's command: the adapter-mode Proposer's "
     'input (e.g. a Nav2 controller output).'),
    ('cmd_vel', 'cmd_vel', 'What the Gate publishes: the base (or sim) executes it.'),
    ('odom', 'odom', 'nav_msgs/Odometry of the robot in the map frame.'),
    ('robots', '0', 'N >= 1: a fleet of N robots in namespaces robot_0 ... robot_{N-1} under one '
     'governance (as flywheel up --robots N); 0: one robot in `namespace`.'),
)

# Processes whose exit ends the launch.
ESSENTIAL = ('gate', 'oracle', 'verifier', 'governance', MANAGER)


def node(name: str, extra_parameters: dict | None = None, **kwargs) -> Node:
    params = [LaunchConfiguration('params_file')]
    if extra_parameters:
        params.append(extra_parameters)
    if name in ESSENTIAL:
        kwargs['on_exit'] = Shutdown(reason=f'{name} exited: alignment_flywheel stops the rest')
    return Node(package=PACKAGE, executable=f'{name}_node', name=name, parameters=params,
                ros_arguments=['--log-level', LaunchConfiguration('log_level')],
                output='screen', **kwargs)


def managed(with_governance: bool) -> list[Node]:
    """The lifecycle nodes and their manager, with the parameters `flywheel up` gives them (a
    node's own parameters override the params file; SetParameter's would not)."""
    names = LIFECYCLE if with_governance else tuple(n for n in LIFECYCLE if n != 'governance')
    overrides = managed_overrides(names)
    return [node(n, overrides.get(n)) for n in (*names, MANAGER)]


def remaps() -> list:
    return [SetParameter('use_sim_time', LaunchConfiguration('use_sim_time')),
            SetRemap('cmd_vel_in', LaunchConfiguration('cmd_vel_in')),
            SetRemap('cmd_vel', LaunchConfiguration('cmd_vel')),
            SetRemap('odom', LaunchConfiguration('odom'))]


def fleet_actions(context) -> list:
    """robots:=N: the graphs `flywheel up --robots N` starts, one group per namespace."""
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)
    nodes = tuple(n for n in GRAPH if n != 'sim' or value('sim').lower() == 'true')
    if value('governance').lower() == 'true':
        nodes += ('governance',)
    graphs = fleet(nodes, Path(value('params_file')), robot_namespaces(int(value('robots'))),
                   overrides={'sim': {'world_path': value('world')}})
    # as `flywheel up`: a fleet too big for the host-only profile's discovery range gets a
    # widened copy (flywheel.ros.transport), for every process of this launch
    env = dict(context.environment)
    widened = widen_discovery(env, participants(graphs), ros_home() / 'alignment_flywheel' / 'dds')
    setup = [] if widened is None else [
        LogInfo(msg=widened),
        *(SetEnvironmentVariable(name, env[name]) for name in
          ('FASTDDS_DEFAULT_PROFILES_FILE', 'ROS_AUTOMATIC_DISCOVERY_RANGE'))]
    return setup + [GroupAction([*([PushROSNamespace(graph.namespace)] if graph.namespace else []),
                         *remaps(), *(node(n, graph.overrides.get(n)) for n in graph.nodes)])
            for graph in graphs]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    defaults = {'params_file': os.path.join(share, 'config', 'flywheel.yaml')}
    governance = LaunchConfiguration('governance')
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                description=description)
          for name, default, description in ARGUMENTS),
        GroupAction([
            PushROSNamespace(LaunchConfiguration('namespace')),
            *remaps(),
            node('sim', {'world_path': LaunchConfiguration('world')},
                 condition=IfCondition(LaunchConfiguration('sim'))),
            node('audit'),
            # one of the two is started
            GroupAction(managed(with_governance=True), condition=IfCondition(governance)),
            GroupAction(managed(with_governance=False), condition=UnlessCondition(governance)),
            node('proposer'),
        ], condition=IfCondition(EqualsSubstitution(LaunchConfiguration('robots'), '0'))),
        OpaqueFunction(function=fleet_actions, condition=UnlessCondition(
            EqualsSubstitution(LaunchConfiguration('robots'), '0'))),
    ])
