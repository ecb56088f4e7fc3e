"""Run the graph against Gazebo (gz sim) instead of the embedded sim, with the same world.

    ros2 launch alignment_flywheel gazebo.launch.py [world:=/path/to/world.yaml]
        [world_sdf:=/path/to/world.sdf] [obstacle_height:=1.0] [gui:=false]
        [params_file:=...] [namespace:=...] [governance:=false] [log_level:=info]

UNTESTED HERE: Gazebo and ros_gz are not installable where this package is developed, so this
file has never been run; it follows the launch usage of ros_gz_sim (gz_sim.launch.py: gz_args,
on_exit_shutdown) and ros_gz_bridge (ros_gz_bridge.launch.py: bridge_name, config_file) in their
public sources. What is tested is what it is made of: the SDF export (test/sim/test_sdf.py parses
it against the world) and config/gz_bridge.yaml naming the topics the exported robot uses.

- Gazebo loads the world that `flywheel world export --sdf` makes from ``world`` (done here at
  launch time into a temporary file, removed on shutdown; or give a file made beforehand as
  ``world_sdf``): the obstacles the embedded sim has, so Gazebo and the Oracle spec describe the
  same floor, and the robot at the world's start, moved by VelocityControl and reported by an
  OdometryPublisher in the map frame.
- ros_gz_bridge maps ``cmd_vel`` (ROS -> gz), ``odom`` (gz -> ROS) and ``/clock`` (gz -> ROS)
  with config/gz_bridge.yaml. The Gate must publish what the bridge expects: Twist (``stamped:
  false``), or change the bridge's ros_type_name to geometry_msgs/msg/TwistStamped.
- The graph is flywheel.launch.py with sim:=false and use_sim_time:=true: every node takes
  /clock. The launch ends when Gazebo exits (on_exit_shutdown) or the Gate, Oracle or
  governance exits.
"""
import os
import shlex
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction,
                            RegisterEventHandler)
from launch.event_handlers import OnShutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

PACKAGE = 'alignment_flywheel'
HERE = os.path.dirname(os.path.abspath(__file__))   # flywheel.launch.py beside this file
BRIDGE_NAME = 'flywheel_gz_bridge'

ARGUMENTS = (
    ('world', 'world.yaml', 'World YAML exported to SDF at launch (relative paths resolve '
     "against the package's config directory)."),
    ('world_sdf', '', 'An SDF world made beforehand with `flywheel world export --sdf`; "" '
     'exports `world` now.'),
    ('obstacle_height', '1.0', 'Height (m) of every obstacle in the exported world.'),
    ('gui', 'true', 'Start the Gazebo GUI (false: the server only).'),
    ('params_file', None, 'Parameters of every node (config/flywheel.yaml; the sim block is '
     'not used).'),
    ('namespace', '', 'Namespace of every node and (relative) topic, the bridge included.'),
    ('governance', 'false', 'Start governance; the Oracle and the Gate follow it.'),
    ('log_level', 'info', 'ROS log level of every node.'),
)


def gazebo(context):
    """Export the world if needed and start gz sim on it (ros_gz_sim's gz_sim.launch.py)."""
    world_sdf = LaunchConfiguration('world_sdf').perform(context)
    actions = []
    if not world_sdf:
        from flywheel.sim.sdf import world_to_sdf
        from flywheel.sim.world import load_world
        world = LaunchConfiguration('world').perform(context)
        if not os.path.isabs(world):
            world = os.path.join(get_package_share_directory(PACKAGE), 'config', world)
        height = float(LaunchConfiguration('obstacle_height').perform(context))
        fd, world_sdf = tempfile.mkstemp(prefix='flywheel_world_', suffix='.sdf')
        with os.fdopen(fd, 'w', encoding='utf-8') as out:
            out.write(world_to_sdf(load_world(world), height=height))
        actions.append(RegisterEventHandler(OnShutdown(on_shutdown=[
            OpaqueFunction(function=lambda _: os.remove(world_sdf))])))
    gui = LaunchConfiguration('gui').perform(context).lower() in ('true', '1', 'yes')
    # -r: run at once (paused, /clock would not advance and every node would wait);
    # -s: server only. gz_sim.launch.py runs the command through a shell: quote the path.
    gz_args = ' '.join(['-r'] + ([] if gui else ['-s']) + [shlex.quote(world_sdf)])
    actions.append(IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(
            get_package_share_directory('ros_gz_sim'), 'launch', 'gz_sim.launch.py')),
        launch_arguments={'gz_args': gz_args, 'on_exit_shutdown': 'true'}.items()))
    return actions


def bridge(context):
    """ros_gz_bridge's own launch file with this package's topic map."""
    return [IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(
            get_package_share_directory('ros_gz_bridge'), 'launch', 'ros_gz_bridge.launch.py')),
        launch_arguments={
            'bridge_name': BRIDGE_NAME,
            'config_file': os.path.join(get_package_share_directory(PACKAGE), 'config',
                                        'gz_bridge.yaml'),
            'namespace': LaunchConfiguration('namespace'),
            'log_level': LaunchConfiguration('log_level'),
        }.items())]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    defaults = {'params_file': os.path.join(share, 'config', 'flywheel.yaml')}
    arg = LaunchConfiguration
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                description=description)
          for name, default, description in ARGUMENTS),
        # ros_gz's packages are looked up only when the launch runs, so the description can be
        # built (and inspected) where they are not installed
        OpaqueFunction(function=gazebo),
        OpaqueFunction(function=bridge),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(HERE, 'flywheel.launch.py')),
            launch_arguments={
                'sim': 'false',
                'use_sim_time': 'true',
                'params_file': arg('params_file'),
                'namespace': arg('namespace'),
                'governance': arg('governance'),
                'log_level': arg('log_level'),
            }.items()),
    ])
