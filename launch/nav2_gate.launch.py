"""Put the Gate between a Nav2 controller and the base: the last hop before the wheels.

    ros2 launch alignment_flywheel nav2_gate.launch.py \
        [cmd_vel_in_topic:=cmd_vel_smoothed] [cmd_vel_out_topic:=cmd_vel] [odom_topic:=odom] \
        [params_file:=.../real_robot.yaml] [namespace:=...] [use_sim_time:=...] \
        [governance:=false] [log_level:=info]

What runs: the Proposer in adapter mode, fed by Nav2's velocity output on ``cmd_vel_in_topic``
(every command becomes a proposal: the twist held over the horizon), the Oracle, the Gate
publishing on ``cmd_vel_out_topic`` (what the base executes), audit, and governance if asked.
No sim. The topic arguments are named after nav2_collision_monitor's ``cmd_vel_in_topic`` and
``cmd_vel_out_topic`` parameters (Nav2 sets them in its params file, not in its launch) and
default to that node's defaults: Nav2's bringup remaps the controller's and behaviour server's
``cmd_vel`` to ``cmd_vel_nav``, the velocity smoother turns that into ``cmd_vel_smoothed``, and
the collision monitor publishes ``cmd_vel`` to the base. So by default the Gate takes the
collision monitor's place; to keep both, chain them: give the collision monitor
``cmd_vel_out_topic: cmd_vel_monitored`` and launch this with
``cmd_vel_in_topic:=cmd_vel_monitored``. Two nodes must never both publish the base's topic.

Message types come from params_file (default config/real_robot.yaml): the proposer's
``enable_stamped_cmd_vel`` (the input: Nav2 publishes TwistStamped by default from Kilted on;
same parameter name as Nav2's) and the Gate's ``stamped`` (the output: ros2_control's
diff_drive_controller takes TwistStamped). A publisher of the other type silently never
connects, so set both to match your Nav2 and your base.

``odom_topic`` must carry nav_msgs/Odometry in the ``map`` frame (the Oracle's obstacles are
in it and the Gate refuses proposals that do not start where that odometry puts the robot): a
wheel odometry in ``odom`` will not do; e.g. robot_localization's map-frame EKF output.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

PACKAGE = 'alignment_flywheel'
HERE = os.path.dirname(os.path.abspath(__file__))   # flywheel.launch.py beside this file

ARGUMENTS = (
    ('cmd_vel_in_topic', 'cmd_vel_smoothed', "Nav2's velocity output the Gate takes in "
     "(nav2_collision_monitor's cmd_vel_in_topic default)."),
    ('cmd_vel_out_topic', 'cmd_vel', 'What the base executes: only the Gate publishes it.'),
    ('odom_topic', 'odom', 'nav_msgs/Odometry of the robot in the map frame.'),
    ('params_file', None, 'Parameters of every node (default config/real_robot.yaml: adapter '
     'mode, TwistStamped in and out, no governance).'),
    ('namespace', '', 'Namespace of every node and (relative) topic, as Nav2\'s.'),
    ('use_sim_time', 'false', 'Take time from /clock (Gazebo).'),
    ('governance', 'false', 'Start governance; the Oracle and the Gate follow it.'),
    ('log_level', 'info', 'ROS log level of every node.'),
)


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    defaults = {'params_file': os.path.join(share, 'config', 'real_robot.yaml')}
    arg = LaunchConfiguration
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                description=description)
          for name, default, description in ARGUMENTS),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(HERE, 'flywheel.launch.py')),
            launch_arguments={
                'sim': 'false',
                'cmd_vel_in': arg('cmd_vel_in_topic'),
                'cmd_vel': arg('cmd_vel_out_topic'),
                'odom': arg('odom_topic'),
                'params_file': arg('params_file'),
                'namespace': arg('namespace'),
                'use_sim_time': arg('use_sim_time'),
                'governance': arg('governance'),
                'log_level': arg('log_level'),
            }.items()),
    ])
