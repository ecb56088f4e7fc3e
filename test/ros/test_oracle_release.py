"""Defence in depth: the Oracle node verifies a release again before it swaps, whoever sent it."""
from __future__ import annotations

from array import array
from datetime import datetime, timezone

import pytest
from std_msgs.msg import String

from alignment_flywheel.msg import OracleRelease
from flywheel.release.bundle import build_bundle, read_bundle
from flywheel.ros import qos, topics
from test.ros.conftest import wait_matched
from test.ros.test_hot_swap import releases  # noqa: F401 - the fixture

pytestmark = pytest.mark.ros


def test_the_oracle_swaps_only_to_a_release_that_verifies(probe, start_graph, releases):  # noqa: F811
    root_path, (_, v110) = releases
    start_graph(['oracle'], {'oracle': {'trust_root_path': str(root_path)}})
    running = probe.collect(String, topics.ORACLE_ACTIVE, qos.STATUS)
    pub = probe.node.create_publisher(OracleRelease, topics.ORACLE_RELEASE, qos.STATUS)
    wait_matched(probe, pub)
    assert probe.spin_until(lambda: running, 20.0) and running[-1].data == '1.0.0'

    def send(bundle: bytes, version: str) -> None:
        pub.publish(OracleRelease(oracle_version=version, number=2, bundle=array('B', bundle),
                                  root=array('B', root_path.read_bytes())))

    # the same spec unsigned (as if a rogue participant published it): refused, no swap
    spec = read_bundle(v110)['oracle_spec.yaml']
    send(build_bundle(spec, 2, datetime(2099, 1, 1, tzinfo=timezone.utc)), '1.1.0')
    probe.spin_for(1.0)
    assert [m.data for m in running] == ['1.0.0']
    # the properly signed one: swapped and reported
    send(v110, '1.1.0')
    assert probe.spin_until(lambda: running[-1].data == '1.1.0', 10.0)
