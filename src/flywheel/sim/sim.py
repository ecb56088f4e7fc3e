"""Sim: integrates a unicycle under the executed command and reports what really happened.

The robot never enters an obstacle: a step that would make contact is not taken, and counts as a
collision. Collisions and near-misses are reported once per episode and object (an episode ends when
the robot has been clear of that object for ``episode_gap`` seconds).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import shapely
from shapely import STRtree, affinity

from flywheel.kinematics import RobotState, step
from flywheel.sim.world import World


class EventKind(enum.Enum):
    COLLISION = 'collision'
    NEAR_MISS = 'near_miss'


@dataclass(frozen=True)
class SimEvent:
    kind: EventKind
    object_id: str
    distance: float
    x: float
    y: float
    stamp_ns: int


class Sim:
    def __init__(self, world: World, episode_gap: float = 1.0):
        self.world = world
        self.state = RobotState(*world.start)
        self.episode_gap_ns = int(episode_gap * 1e9)
        self._ids = [obstacle_id for obstacle_id, _ in world.obstacles]
        self._polygons = [p for _, p in world.obstacles]
        self._tree = STRtree(self._polygons)
        self._last_seen: dict[tuple[EventKind, str], int] = {}
        self.path: list[tuple[float, float]] = [(self.state.x, self.state.y)]

    def footprint_at(self, x: float, y: float, yaw: float):
        placed = affinity.rotate(self.world.footprint, yaw, origin=(0, 0), use_radians=True)
        return affinity.translate(placed, x, y)

    def step(self, v: float, w: float, dt: float, now_ns: int) -> list[SimEvent]:
        """Execute (v, w) for dt; return the collisions and near-misses that begin now."""
        s = self.state
        x, y, yaw = step(s.x, s.y, s.yaw, v, w, dt)
        body = self.footprint_at(x, y, yaw)
        hits = self._tree.query(body, predicate='intersects')
        events = []
        if len(hits):
            for i in hits:
                events += self._episode(EventKind.COLLISION, int(i), 0.0, x, y, now_ns)
            self.state = RobotState(s.x, s.y, s.yaw, 0.0, 0.0)
            return events
        self.state = RobotState(x, y, yaw, v, w)
        self.path.append((x, y))
        near = self._tree.query(body, predicate='dwithin', distance=self.world.near_miss_distance)
        for i in near:
            distance = float(shapely.distance(body, self._polygons[int(i)]))
            events += self._episode(EventKind.NEAR_MISS, int(i), distance, x, y, now_ns)
        return events

    def _episode(self, kind, index, distance, x, y, now_ns) -> list[SimEvent]:
        key = (kind, self._ids[index])
        last = self._last_seen.get(key)
        self._last_seen[key] = now_ns
        if last is not None and now_ns - last < self.episode_gap_ns:
            return []
        return [SimEvent(kind, self._ids[index], distance, x, y, now_ns)]
