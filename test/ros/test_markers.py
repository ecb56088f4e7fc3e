"""RViz gets the spec in force from the Oracle (once per change, for late joiners too) and the
recent proposals coloured by the Gate's action from the markers node."""
from __future__ import annotations

import pytest
from visualization_msgs.msg import Marker, MarkerArray

from flywheel.enforcement.decision import Action
from flywheel.ros import qos, topics
from flywheel.viz import ACTION_COLORS
from test.ros.conftest import GateIO

pytestmark = pytest.mark.ros


def test_the_oracle_publishes_its_zones_for_late_joiners(probe, start_graph):
    start_graph(['oracle'])
    zones = probe.collect(MarkerArray, topics.ORACLE_MARKERS, qos.STATUS)
    assert probe.spin_until(lambda: zones, 30.0)
    markers = zones[-1].markers
    assert markers[0].action == Marker.DELETEALL
    assert {m.text for m in markers if m.type == Marker.TEXT_VIEW_FACING} >= {
        'shelf_a', 'charging_bay', 'crosswalk <= 0.3 m/s'}


def test_decided_proposals_are_drawn_in_their_action_colour(probe, start_graph, spec):
    start_graph(['markers'])
    drawn = probe.collect(MarkerArray, topics.MARKERS, 10)
    io = GateIO.start(probe, start_graph, spec)
    try:
        p = io.propose()
        io.verdict(p)

        def green():
            return [m for a in drawn for m in a.markers if m.ns == 'proposals'
                    and (m.color.r, m.color.g, m.color.b, m.color.a) == pytest.approx(
                        ACTION_COLORS[Action.ALLOW])]
        assert probe.spin_until(green, 10.0)
        assert probe.spin_until(lambda: any(m.ns == 'footprint' for a in drawn
                                            for m in a.markers), 10.0)
    finally:
        io.odometry.close()
