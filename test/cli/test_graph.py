import sys
from pathlib import Path

from flywheel.cli.graph import node_command, ros_value


def test_parameter_values_are_spelled_as_yaml():
    assert ros_value(True) == 'true'
    assert ros_value(0.25) == '0.25'
    assert ros_value(['SHORTCUT', 'NAN']) == "['SHORTCUT','NAN']"
    assert ros_value("it's") == "'it''s'"
    assert ros_value(3) == '3'


def test_quoted_values_reach_a_node_as_strings():
    import yaml
    assert yaml.safe_load(ros_value(['NAN', 'true', '1e3'])) == ['NAN', 'true', '1e3']


def test_node_command_runs_the_module_with_params_and_overrides():
    cmd = node_command('gate', Path('p.yaml'), {'command_timeout': 0.5})
    assert cmd[:3] == [sys.executable, '-m', 'flywheel.ros.gate_node']
    assert cmd[3:] == ['--ros-args', '--params-file', 'p.yaml', '-p', 'command_timeout:=0.5']


def test_the_verifier_is_brought_up_before_the_gate_and_follows_governance_with_it():
    from flywheel.cli.graph import GRAPH, LIFECYCLE, MANAGER, managed_overrides
    assert 'verifier' in GRAPH and LIFECYCLE.index('verifier') < LIFECYCLE.index('gate')
    alone = managed_overrides(GRAPH)
    assert alone[MANAGER]['node_names'] == ['oracle', 'verifier', 'gate']
    assert 'follow_governance' not in alone['verifier']
    governed = managed_overrides(GRAPH + ('governance',))
    assert all(governed[n]['follow_governance'] for n in ('oracle', 'verifier', 'gate'))
