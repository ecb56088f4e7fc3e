"""The robot footprint swept along a trajectory, including between the samples.

A segment's swept area is the convex hull of the footprint at its two end poses. For a convex
footprint that translates, that hull is exactly the swept area; a footprint that is not convex is
replaced by its hull, and segments that turn more than ``max_yaw_step`` are subdivided, so the
result is a conservative envelope: it may flag a near thing, never miss a corner cut between two
waypoints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely


@dataclass(frozen=True)
class Sweep:
    """The swept footprint as one convex polygon per (sub)segment.

    ``segment[j]`` is the index of the trajectory segment (from point i to i+1) that hull j belongs
    to; a single-point trajectory has one hull, the footprint at that pose, in segment 0.
    """

    hulls: np.ndarray      # shapely Polygons, shape (M,)
    segment: np.ndarray    # int, shape (M,)
    vertices: np.ndarray   # footprint vertices at every (dense) pose, shape (M + 1, K, 2)


def densify(poses: np.ndarray, max_yaw_step: float) -> tuple[np.ndarray, np.ndarray]:
    """Poses (N, 3) of [x, y, yaw] with turns over max_yaw_step subdivided.

    Returns the dense poses (M, 3) and, per dense pose, the index of the segment it starts.
    """
    if len(poses) < 2:
        return poses, np.zeros(len(poses), dtype=np.int64)
    delta = np.diff(poses, axis=0)
    delta[:, 2] = (delta[:, 2] + np.pi) % (2.0 * np.pi) - np.pi
    steps = np.maximum(1, np.ceil(np.abs(delta[:, 2]) / max_yaw_step).astype(np.int64))
    if (steps == 1).all():
        return poses, np.arange(len(poses), dtype=np.int64)
    segment = np.repeat(np.arange(len(delta)), steps)
    # fraction along the segment of each dense pose: 0, 1/k, ..., (k-1)/k
    starts = np.cumsum(steps) - steps
    frac = (np.arange(len(segment)) - np.repeat(starts, steps)) / np.repeat(steps, steps)
    dense = poses[segment] + delta[segment] * frac[:, None]
    dense = np.vstack([dense, poses[-1:]])
    return dense, np.append(segment, len(delta))


def footprints(poses: np.ndarray, footprint_xy: np.ndarray) -> np.ndarray:
    """Footprint vertices (K, 2) placed at each pose: world coordinates, shape (M, K, 2)."""
    cos, sin = np.cos(poses[:, 2]), np.sin(poses[:, 2])
    fx, fy = footprint_xy[:, 0], footprint_xy[:, 1]
    wx = poses[:, 0, None] + cos[:, None] * fx - sin[:, None] * fy
    wy = poses[:, 1, None] + sin[:, None] * fx + cos[:, None] * fy
    return np.stack([wx, wy], axis=-1)


def sweep(poses: np.ndarray, footprint_xy: np.ndarray, max_yaw_step: float) -> Sweep:
    """The swept footprint of a trajectory of poses (N >= 1, 3)."""
    dense, segment = densify(poses, max_yaw_step)
    placed = footprints(dense, footprint_xy)
    if len(dense) == 1:
        return Sweep(shapely.polygons(placed), segment, placed)
    # Each segment's 2K vertices as one (possibly self-intersecting) ring: only its hull is used,
    # and building rings from one array is much faster than building multipoints.
    rings = np.concatenate([placed[:-1], placed[1:], placed[:-1, :1]], axis=1)
    return Sweep(shapely.convex_hull(shapely.polygons(rings)), segment[:-1], placed)
