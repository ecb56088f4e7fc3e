"""Start the alignment_flywheel graph: sim (optional), audit, Oracle, Gate, Proposer.

    ros2 launch alignment_flywheel flywheel.launch.py [params_file:=...] [sim:=false]

The same nodes and parameters as `flywheel up`. With sim:=false, bring your own robot or Gazebo
bridge: it must publish nav_msgs/Odometry on `odom` and execute geometry_msgs/Twist from `cmd_vel`.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'alignment_flywheel'


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory(PACKAGE), 'config', 'flywheel.yaml')
    params = LaunchConfiguration('params_file')
    return LaunchDescription([
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters of every node (config/flywheel.yaml).'),
        DeclareLaunchArgument('governance', default_value='false',
                              description='Start the governance node (set trust_root_path in '
                                          'params_file, and the oracle\'s too).'),
        DeclareLaunchArgument('sim', default_value='true',
                              description='Start the embedded 2D world (false: a real robot or '
                                          'another simulator provides odom and takes cmd_vel).'),
        Node(package=PACKAGE, executable='sim_node', name='sim', parameters=[params],
             output='screen', condition=IfCondition(LaunchConfiguration('sim'))),
        Node(package=PACKAGE, executable='audit_node', name='audit', parameters=[params],
             output='screen'),
        Node(package=PACKAGE, executable='governance_node', name='governance',
             parameters=[params], output='screen',
             condition=IfCondition(LaunchConfiguration('governance'))),
        Node(package=PACKAGE, executable='oracle_node', name='oracle', parameters=[params],
             output='screen'),
        Node(package=PACKAGE, executable='gate_node', name='gate', parameters=[params],
             output='screen'),
        Node(package=PACKAGE, executable='proposer_node', name='proposer', parameters=[params],
             output='screen'),
    ])
