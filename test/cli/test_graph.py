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


def test_participants_counts_every_node_process_and_each_gates_output_process():
    from flywheel.cli.graph import GRAPH, MANAGER, fleet, participants, robot_namespaces
    one = fleet(GRAPH, Path('p.yaml'), robot_namespaces(0))
    assert participants(one) == len(GRAPH) + 1 + 1          # + the manager, + the Gate's output
    ten = fleet(GRAPH + ('governance',), Path('p.yaml'), robot_namespaces(10))
    assert participants(ten) == 10 * (len(GRAPH) + 2) + 2   # + governance and its manager
    assert participants(fleet(('oracle',), Path('p.yaml'), [''])) == 2   # with its manager
    assert MANAGER in one[0].nodes


def test_governance_alone_is_one_graph_with_its_manager():
    """`flywheel up --only governance` (the robots' nodes started elsewhere): no robot graph, so
    no robot lifecycle manager left with no node to manage."""
    from flywheel.cli.graph import MANAGER, fleet
    graph, = fleet(('governance',), Path('p.yaml'), [''])
    assert graph.nodes == ('governance', MANAGER)
    assert graph.overrides[MANAGER]['node_names'] == ['governance']


def test_a_graph_has_its_participants_once_every_process_has_a_socket():
    """`flywheel up` starts a fleet's next robot once this one's processes have created their DDS
    participants, seen as their first socket."""
    import subprocess
    from flywheel.cli.graph import Graph
    graph = Graph(('a', 'b'), Path('p.yaml'))
    wait_for_go = ('import socket, sys; sys.stdin.readline(); s = socket.socket(); '
                   'print("open", flush=True); sys.stdin.readline()')
    try:
        for name in graph.nodes:
            graph.processes[name] = subprocess.Popen(
                [sys.executable, '-c', wait_for_go], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True)
        assert not graph.participants_created()
        a, b = graph.processes['a'], graph.processes['b']
        a.stdin.write('go\n')
        a.stdin.flush()
        assert a.stdout.readline() == 'open\n'
        assert not graph.participants_created()        # b has none yet
        b.stdin.write('go\n')
        b.stdin.flush()
        assert b.stdout.readline() == 'open\n'
        assert graph.participants_created()
        b.kill()
        b.wait()
        assert graph.participants_created()            # an exited one is not waited for
    finally:
        for p in graph.processes.values():
            p.kill()
            p.wait()


def test_a_file_closed_while_looking_is_no_participant(monkeypatch):
    """A starting process closes files between the listing of its descriptors and the look at
    each: such a one is not taken for "cannot tell, assume created"."""
    import os
    import subprocess
    from flywheel.cli.graph import Graph
    graph = Graph(('a',), Path('p.yaml'))
    graph.processes['a'] = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'],
                                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
    readlink = os.readlink

    def closing(path, *args, **kwargs):
        if path.endswith('/fd/0'):
            raise FileNotFoundError(path)
        return readlink(path, *args, **kwargs)
    try:
        monkeypatch.setattr(os, 'readlink', closing)
        assert not graph.participants_created()
    finally:
        graph.processes['a'].kill()
        graph.processes['a'].wait()


def test_a_fleets_managers_get_the_shared_host_timing_unless_the_params_file_sets_it(tmp_path):
    from flywheel.cli.graph import GRAPH, MANAGER, SHARED_HOST_TIMING, fleet, robot_namespaces
    params = tmp_path / 'p.yaml'
    params.write_text('/**/oracle:\n  ros__parameters:\n    spec_path: s.yaml\n')
    one = fleet(GRAPH, params, robot_namespaces(0))
    assert 'heartbeat_timeout' not in one[0].overrides[MANAGER]
    three = fleet(GRAPH + ('governance',), params, robot_namespaces(3))
    assert all(g.overrides[MANAGER].items() >= SHARED_HOST_TIMING.items() for g in three)
    params.write_text('/**/lifecycle_manager:\n  ros__parameters:\n    heartbeat_timeout: 7.0\n')
    mine = fleet(GRAPH, params, robot_namespaces(3))
    assert all('heartbeat_timeout' not in g.overrides[MANAGER] for g in mine)
    assert all(g.overrides[MANAGER]['transition_timeout'] == SHARED_HOST_TIMING[
        'transition_timeout'] for g in mine)
