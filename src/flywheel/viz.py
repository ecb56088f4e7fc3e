"""What RViz or Foxglove should draw, as plain shapes: the zones of the Oracle spec in force, the
recent proposals coloured by what the Gate did with them, the footprint at the robot.

Built off the decision path (the markers node, and the Oracle only when it swaps), never while a
proposal is being decided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flywheel.enforcement.decision import Action

Color = tuple[float, float, float, float]

ZONE_COLORS: dict[str, Color] = {
    'obstacles': (0.35, 0.35, 0.35, 0.9), 'keep_out': (0.85, 0.1, 0.1, 0.5),
    'speed_zones': (0.95, 0.75, 0.1, 0.35), 'geofence': (0.2, 0.4, 0.9, 0.8)}
ACTION_COLORS: dict[Action, Color] = {
    Action.ALLOW: (0.1, 0.8, 0.2, 0.9), Action.DEGRADE: (0.95, 0.75, 0.1, 0.9),
    Action.ESCALATE: (0.6, 0.3, 0.9, 0.9), Action.BLOCK: (0.9, 0.1, 0.1, 0.9),
    Action.FALLBACK: (0.5, 0.0, 0.0, 1.0)}


@dataclass(frozen=True)
class Shape:
    """A closed polygon (``closed``) or an open line, in the world frame."""

    namespace: str
    ident: int
    points: tuple[tuple[float, float], ...]
    color: Color
    closed: bool = True
    label: str = ''


def zone_shapes(spec) -> list[Shape]:
    shapes = []
    for namespace in ('obstacles', 'keep_out', 'speed_zones'):
        for i, zone in enumerate(getattr(spec, namespace)):
            label = zone.zone_id + (f' <= {zone.max_speed:g} m/s'
                                    if namespace == 'speed_zones' else '')
            shapes.append(Shape(namespace, i, _ring(zone.polygon), ZONE_COLORS[namespace],
                                label=label))
    if spec.geofence is not None:
        shapes.append(Shape('geofence', 0, _ring(spec.geofence), ZONE_COLORS['geofence'],
                            label='geofence'))
    return shapes


def trajectory_shape(ident: int, xy: np.ndarray, action: Action, label: str = '') -> Shape:
    return Shape('proposals', ident, tuple(map(tuple, np.asarray(xy, float)[:, :2])),
                 ACTION_COLORS[action], closed=False, label=label)


def footprint_shape(footprint, x: float, y: float, yaw: float) -> Shape:
    c, s = math.cos(yaw), math.sin(yaw)
    points = tuple((x + c * px - s * py, y + s * px + c * py) for px, py in _ring(footprint))
    return Shape('footprint', 0, points, (0.1, 0.5, 1.0, 0.9))


def _ring(polygon) -> tuple[tuple[float, float], ...]:
    return tuple((float(px), float(py)) for px, py in list(polygon.exterior.coords)[:-1])
