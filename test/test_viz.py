"""The shapes RViz gets: every zone of the spec with its id, proposals in their action's colour,
the footprint placed at the robot."""
import math

import numpy as np

from flywheel.enforcement.decision import Action
from flywheel.viz import ACTION_COLORS, footprint_shape, trajectory_shape, zone_shapes


def test_every_zone_of_the_spec_is_drawn_with_its_id(spec):
    shapes = zone_shapes(spec)
    labels = {s.label.split(' ')[0] for s in shapes}
    assert {z.zone_id for z in spec.obstacles + spec.keep_out + spec.speed_zones} <= labels
    shelf = next(s for s in shapes if s.label == 'shelf_a')
    assert set(shelf.points) == {(4.0, 2.5), (5.0, 2.5), (5.0, 5.5), (4.0, 5.5)}
    assert any(s.namespace == 'speed_zones' and '0.3 m/s' in s.label for s in shapes)


def test_a_proposal_takes_the_colour_of_what_the_gate_did():
    shape = trajectory_shape(3, np.array([[0, 0, 0], [1, 0, 0]]), Action.BLOCK)
    assert shape.color == ACTION_COLORS[Action.BLOCK] and not shape.closed
    assert shape.points == ((0.0, 0.0), (1.0, 0.0))


def test_the_footprint_is_placed_and_turned_with_the_robot(spec):
    shape = footprint_shape(spec.footprint, 2.0, 1.0, math.pi / 2)
    front_left = (0.3, 0.2)                  # body frame: 0.3 m ahead, 0.2 m left
    assert any(math.isclose(x, 2.0 - front_left[1], abs_tol=1e-9)
               and math.isclose(y, 1.0 + front_left[0], abs_tol=1e-9) for x, y in shape.points)
