"""The swept footprint covers the robot between samples, including while it turns."""
import math

import numpy as np
import shapely
from shapely.geometry import Polygon

from flywheel.oracle.sweep import densify, footprints, sweep

SQUARE = np.array([[-0.1, -0.1], [0.1, -0.1], [0.1, 0.1], [-0.1, 0.1]])


def test_footprint_is_placed_and_rotated():
    placed = footprints(np.array([[1.0, 2.0, math.pi / 2]]), np.array([[0.3, 0.0]]))
    assert np.allclose(placed[0, 0], [1.0, 2.3])


def test_segments_covered_between_two_distant_samples():
    swept = sweep(np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]), SQUARE, 0.35)
    assert len(swept.hulls) == 1
    assert swept.hulls[0].contains(shapely.Point(1.0, 0.05))
    assert math.isclose(swept.hulls[0].area, 2.2 * 0.2)


def test_large_turns_are_subdivided():
    poses = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, math.pi / 2]])
    dense, segment = densify(poses, 0.35)
    assert len(dense) == 1 + math.ceil((math.pi / 2) / 0.35)
    assert np.allclose(np.diff(dense[:, 2]), (math.pi / 2) / (len(dense) - 1))
    assert set(segment[:-1]) == {0}


def test_turn_through_the_wrap_takes_the_short_way():
    poses = np.array([[0.0, 0.0, 3.0], [0.0, 0.0, -3.0]])
    dense, _ = densify(poses, 0.1)
    assert len(dense) == 1 + math.ceil((2 * math.pi - 6.0) / 0.1)


def test_a_rotating_long_robot_sweeps_its_arc():
    long_body = np.array([[-0.05, -0.05], [1.0, -0.05], [1.0, 0.05], [-0.05, 0.05]])
    swept = sweep(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, math.pi / 2]]), long_body, 0.35)
    union = shapely.union_all(swept.hulls)
    # the tip passes (cos 45 deg, sin 45 deg) on its way: the sweep must cover it
    assert union.buffer(0.02).contains(shapely.Point(math.sqrt(0.5) * 0.98, math.sqrt(0.5) * 0.98))


def test_single_pose_is_the_footprint():
    swept = sweep(np.array([[1.0, 1.0, 0.0]]), SQUARE, 0.35)
    assert swept.hulls[0].equals(Polygon(SQUARE + [1.0, 1.0]))
