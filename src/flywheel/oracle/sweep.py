"""The robot footprint swept along a path of constant-twist segments: the region the Oracle checks.

A segment starts at a pose, holds a twist (v, w) for a duration and is taken to end at the next
pose, which may lie off the exact arc end by a few millimetres (a trajectory's next sample) or on
it (the held command). Invariant (a hypothesis property against dense sampling with exact polygons
holds it): every placement of the footprint along the exact arc, and at the end pose, lies inside
the union of the segment's hulls, even with every footprint point moved by up to the segment's
``margin`` minus the arc end's distance from the end pose (so the margin must cover that). Why:

- Under a constant twist every footprint point moves on a circle about the instantaneous centre
  of rotation (a line when w = 0), turning by exactly w*t: the direction and size of a turn come
  from the twist, never from the difference of two wrapped yaws.
- Each segment is split into n equal sub-arcs. On a sub-arc of angle phi <= pi a point on a circle
  of radius rho stays within the sagitta rho*(1 - cos(phi/2)) <= rho*phi**2/8 of its chord, and
  the chords of all footprint points lie in the convex hull of the footprint at the two sub-poses.
  rho is at most |v|/|w| + R (R: the footprint radius), so with theta = |w|*t the bound is
  (|v| + |w|*R)*|w|*t**2/(8*n**2). n is the smallest count that brings it under ``tolerance``
  and keeps every sub-arc under pi/2, at most MAX_SUBARCS; a capped segment is inflated by its
  actual bound instead (2*rho, the circle's diameter, for a sub-arc over pi), so the work per
  segment is bounded whatever the input and the region stays sound.
- Replacing the exact arc end by the end pose moves each chord by at most their distance, which
  the margin covers.
- The footprint is inflated by that chord bound plus the margin: the mitred offset of a convex
  polygon by m contains its Minkowski sum with a disc of radius m, keeps its vertex count, and
  hull((F + D)_a U (F + D)_b) = hull(F_a U F_b) + D.

A footprint that is not convex is replaced by its hull, so the result is a conservative envelope:
it may flag a near thing, never miss a corner cut between two samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from flywheel.kinematics import advance

# Sub-arcs per arc at most: bounds the work on absurd twists (their chord bound is inflated).
MAX_SUBARCS = 32
# The longest sub-arc turn (rad): keeps every chord within the sagitta bound's premise (<= pi).
MAX_SUBARC_TURN = math.pi / 2


@dataclass(frozen=True)
class Sweep:
    """The swept footprint as one convex polygon per sub-arc.

    ``segment[j]`` is the pose index of the segment hull j belongs to, ``start[j]`` the time (s)
    its motion starts, ``speed[j]`` its segment's |v| and ``bounds[j]`` its (xmin, ymin, xmax,
    ymax); ``extent`` is the box of them all. ``placements`` (D, K, 2) are the inflated
    footprints every hull is the convex hull of two consecutive ones of, and ``owner[d]`` the pose
    placement d is at or after (in the segment that pose starts). The hulls of consecutive
    segments (pose indices i, i + 1) and of one segment share a placement: each such run of
    hulls is connected.
    """

    hulls: np.ndarray        # shapely Polygons, shape (M,)
    segment: np.ndarray      # int, shape (M,)
    start: np.ndarray        # float, shape (M,)
    speed: np.ndarray        # float, shape (M,)
    bounds: np.ndarray       # float, shape (M, 4)
    extent: tuple[float, float, float, float]
    placements: np.ndarray   # float, shape (D, K, 2)
    owner: np.ndarray        # int, shape (D,)


@dataclass(frozen=True)
class Footprint:
    """A convex robot footprint in the body frame, prepared once for sweeping.

    ``corners`` (K,) are its vertices as x + iy, counter-clockwise: placing it at (x, y, yaw) is
    one multiply-add, (x + iy) + exp(i*yaw) * corners. ``corners + m * mitre`` is its mitred
    offset by m (every edge moved outwards by m). ``radius`` is the largest distance of a footprint
    point from the robot origin.
    """

    corners: np.ndarray
    mitre: np.ndarray
    radius: float

    @classmethod
    def of(cls, polygon: Polygon) -> Footprint:
        """The footprint of ``polygon``'s convex hull (a superset, so sweeping it is safe)."""
        xy = np.asarray(orient(polygon.convex_hull, 1.0).exterior.coords)[:-1]
        corners = xy[:, 0] + 1j * xy[:, 1]
        edges = np.roll(corners, -1) - corners
        normals = -1j * edges / np.abs(edges)          # outward for a counter-clockwise ring
        before = np.roll(normals, 1)
        mitre = (before + normals) / (1.0 + (before * normals.conj()).real)
        return cls(corners, mitre, float(np.abs(corners).max()))

    def place(self, poses: np.ndarray, inflation: np.ndarray) -> np.ndarray:
        """The footprint inflated by inflation (D,) at poses (D, 3): vertices (D, K) as x + iy."""
        return ((poses[:, 0] + 1j * poses[:, 1])[:, None]
                + np.exp(1j * poses[:, 2])[:, None]
                * (self.corners + inflation[:, None] * self.mitre))


def subdivide(twists: np.ndarray, durations: np.ndarray, radius: float,
              tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: the number of sub-arcs and the bound on the chord error of every footprint
    point (<= tolerance unless the count is capped)."""
    speed, rate = np.abs(twists[:, 0]), np.abs(twists[:, 1])
    turn = rate * durations
    bend = (speed + rate * radius) * turn * durations / 8.0    # the chord bound times n**2
    count = np.maximum(np.sqrt(bend / tolerance), turn / MAX_SUBARC_TURN)
    n = np.ceil(np.minimum(np.maximum(count, 1.0), MAX_SUBARCS)).astype(np.int64)
    chord = bend / (n * n)
    wide = turn > math.pi * n
    if wide.any():
        # a sub-arc over a half turn: any point of a circle is within its diameter of another
        chord[wide] = 2.0 * (speed[wide] / rate[wide] + radius)
    return n, chord


def sweep(poses: np.ndarray, twists: np.ndarray, durations: np.ndarray, times: np.ndarray,
          margins: np.ndarray, segments: np.ndarray, footprint: Footprint,
          tolerance: float) -> Sweep:
    """The footprint swept along segments: for each pose index i in ``segments``, from poses[i]
    (P, 3 of [x, y, yaw]) along twists[i] (P, 2 of [v, w]) held for durations[i] from times[i],
    ending at poses[i + 1]; every placement inflated by the margin of each segment it belongs to
    (margins, P) plus the larger of that segment's chord bound and ``tolerance``."""
    n, chord = subdivide(twists[segments], durations[segments], footprint.radius, tolerance)
    inflation = np.zeros(len(poses))
    inflation[segments] = margins[segments] + np.maximum(chord, tolerance)
    inflation[segments + 1] = np.maximum(inflation[segments + 1], inflation[segments])
    if n.max() == 1:
        # No segment needs inner sub-poses: the poses are the dense path.
        owner, offset, dense, segment, a = (np.arange(len(poses)), np.zeros(len(poses)), poses,
                                            segments, segments)
    else:
        # Every pose, followed by the n - 1 inner sub-poses of the segment it starts (if any);
        # hull j spans dense poses a[j] and a[j] + 1 (the next sub-pose, or the next pose).
        count = np.ones(len(poses), dtype=np.int64)
        count[segments] = n
        step = np.zeros(len(poses))
        step[segments] = durations[segments] / n
        owner = np.repeat(np.arange(len(poses)), count)
        first = np.cumsum(count) - count
        offset = (np.arange(len(owner)) - first[owner]) * step[owner]
        dense = advance(poses[owner], twists[owner], offset)
        segment = np.repeat(segments, n)
        a = first[segment] + np.arange(len(segment)) - np.repeat(np.cumsum(n) - n, n)
    placed = footprint.place(dense, inflation[owner])
    # The 2K vertices as one line: only its hull is used, and GEOS builds lines from one array
    # faster than rings or multipoints.
    hulls = shapely.convex_hull(shapely.linestrings(_xy(np.concatenate([placed[a], placed[a + 1]],
                                                                       axis=1))))
    bounds = shapely.bounds(hulls)
    extent = np.concatenate((bounds[:, :2].min(axis=0), bounds[:, 2:].max(axis=0)))
    return Sweep(hulls, segment, times[segment] + offset[a], np.abs(twists[segment, 0]), bounds,
                 tuple(extent.tolist()), _xy(placed), owner)


def _xy(points: np.ndarray) -> np.ndarray:
    """Complex points (..., K) as float coordinates (..., K, 2), without copying."""
    return points.view(np.float64).reshape(*points.shape, 2)
