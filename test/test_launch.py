"""The launch file describes the same graph as `flywheel up`. Needs the ros2 launch packages
(present on a ROS 2 install, absent from PyPI): skipped where they cannot be imported."""
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.launch
pytest.importorskip('launch_ros')     # before `launch`: the repository's launch/ folder is not it
pytest.importorskip('launch')

LAUNCH_FILE = Path(__file__).resolve().parents[1] / 'launch' / 'flywheel.launch.py'


def description():
    spec = importlib.util.spec_from_file_location('flywheel_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def test_launch_file_starts_the_four_nodes_with_the_shared_parameters():
    from launch_ros.actions import Node
    from flywheel.cli.graph import GRAPH
    nodes = [e for e in description().entities if isinstance(e, Node)]
    from flywheel.cli.graph import OPTIONAL
    assert sorted(n.node_executable for n in nodes) == sorted(f'{n}_node'
                                                              for n in GRAPH + OPTIONAL)
    assert all(n.node_package == 'alignment_flywheel' for n in nodes)


def test_launch_arguments_are_declared():
    from launch.actions import DeclareLaunchArgument
    names = {e.name for e in description().entities if isinstance(e, DeclareLaunchArgument)}
    assert names == {'params_file', 'sim', 'governance'}
