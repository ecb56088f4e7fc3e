"""Which Fast DDS profile a flywheel process gets, and the widened copy a fleet gets when it has
more participants than the host-only profile discovers. (That the widened copy makes participants
beyond the shipped range meet is checked with real participants in test/ros/test_transport.py.)"""
from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from flywheel.ros.transport import (ANY_HOST_PROFILE, LOCALHOST_PROFILE, PEERS_RANGE, TOOLS, configure_transport,
                                    profile_dir, widen_discovery)

SHIPPED = int(PEERS_RANGE.search((profile_dir() / LOCALHOST_PROFILE).read_text()).group(1))


def localhost() -> dict:
    return {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}


def test_a_graph_that_fits_the_shipped_range_is_left_alone(tmp_path):
    env = localhost()
    assert widen_discovery(env, SHIPPED - TOOLS, tmp_path) is None
    assert env == localhost() and not list(tmp_path.iterdir())


def test_a_bigger_graph_gets_a_copy_announcing_to_enough_ports(tmp_path):
    env = localhost()
    said = widen_discovery(env, SHIPPED - TOOLS + 1, tmp_path)
    path = tmp_path / env['FASTDDS_DEFAULT_PROFILES_FILE'].rsplit('/', 1)[-1]
    assert str(path) in said and str(SHIPPED) in said
    widened = path.read_text()
    peers = int(PEERS_RANGE.search(widened).group(1))
    assert peers >= SHIPPED + 1 and peers % 16 == 0
    # nothing else of the profile changes (UDP only, host-only peers, announcements)
    shipped = (profile_dir() / LOCALHOST_PROFILE).read_text()
    assert PEERS_RANGE.sub('', widened) == PEERS_RANGE.sub('', shipped)
    # the profile does the host-only discovery: LOCALHOST would add rmw_fastrtps's own transports
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SYSTEM_DEFAULT'


@pytest.mark.parametrize('participants', [40, 82, 200])
def test_the_range_covers_the_graph_and_the_operators_tools(tmp_path, participants):
    env = localhost()
    widen_discovery(env, participants, tmp_path)
    text = open(env['FASTDDS_DEFAULT_PROFILES_FILE']).read()
    assert int(PEERS_RANGE.search(text).group(1)) >= participants + TOOLS


def test_a_node_started_on_the_widened_copy_says_so(tmp_path):
    env = localhost()
    widen_discovery(env, 100, tmp_path)
    said = configure_transport(env)
    assert re.search(r'UDP only \(localhost_udp_\d+_peers\.xml, widened', said)
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'].endswith('_peers.xml')


@pytest.mark.parametrize('other', [
    {'FASTDDS_DEFAULT_PROFILES_FILE': '/etc/mine.xml'},     # the user's own profile is respected
    {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'},
    {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'},             # multicast discovery: no range
])
def test_nothing_is_widened_unless_the_host_only_profile_would_be_used(tmp_path, other):
    env = {**localhost(), **other}
    before = dict(env)
    assert widen_discovery(env, 500, tmp_path) is None
    assert env == before and not list(tmp_path.iterdir())


def test_without_a_widened_copy_nodes_keep_the_shipped_profiles():
    env = localhost()
    assert 'localhost_udp.xml' in configure_transport(env)
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'].endswith(LOCALHOST_PROFILE)
    env = {}
    assert 'udp.xml' in configure_transport(env)
    mine = {'FASTDDS_DEFAULT_PROFILES_FILE': '/etc/mine.xml'}
    assert 'yours' in configure_transport(mine)


def test_a_node_started_by_a_process_that_chose_the_shipped_profile_does_not_call_it_yours():
    started_by = localhost()
    configure_transport(started_by)         # a test or `flywheel demo`, before it starts nodes
    node_env = dict(started_by)
    said = configure_transport(node_env)
    assert 'yours' not in said and 'UDP only (localhost_udp.xml' in said
    assert node_env == started_by


HOLDER = '''
import sys
from flywheel.ros import transport
transport.participant_lock_path = lambda: __import__('pathlib').Path(sys.argv[1])
with transport.creating_participant(print):
    print('held', flush=True)
    sys.stdin.readline()
'''


def test_participants_are_created_one_at_a_time_and_a_killed_holder_frees_the_lock(
        tmp_path, monkeypatch):
    import signal
    import subprocess
    import sys
    from flywheel.ros import transport
    path = tmp_path / 'participant.lock'
    monkeypatch.setattr(transport, 'participant_lock_path', lambda: path)
    monkeypatch.setattr(transport, 'PARTICIPANT_LOCK_S', 0.5)
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        warned = []
        with transport.creating_participant(warned.append):    # held elsewhere: passed over
            pass
        assert len(warned) == 1 and str(path) in warned[0]
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with transport.creating_participant(warned.append):    # freed by the kernel
            pass
        assert len(warned) == 1
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.parametrize('profile', [LOCALHOST_PROFILE, ANY_HOST_PROFILE])
def test_a_service_reply_waits_for_a_client_discovered_late(profile):
    """rmw_fastrtps sends a reply only once the client's reply reader is matched, waiting at most
    the "service" writer profile's max_blocking_time (100 ms by default) and dropping it after:
    the client then waits out its whole timeout on a node that answered. Both shipped profiles
    give a busy host's discovery seconds, not 100 ms."""
    ns = {'dds': 'http://www.eprosima.com'}
    root = ElementTree.parse(profile_dir() / profile).getroot()
    writer = root.find("dds:profiles/dds:data_writer[@profile_name='service']", ns)
    assert writer is not None
    blocking = writer.find('dds:qos/dds:reliability/dds:max_blocking_time', ns)
    seconds = int(blocking.findtext('dds:sec', '0', ns)) + \
        int(blocking.findtext('dds:nanosec', '0', ns)) / 1e9
    assert seconds >= 1.0
