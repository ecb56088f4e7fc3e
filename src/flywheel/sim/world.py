"""World: what is really there (config/world.yaml). The Oracle spec is only a model of it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shapely.geometry import Point, Polygon

from flywheel.errors import SpecError
from flywheel.yamldoc import load_yaml, mapping, named_polygons, number, polygon, sequence, text


@dataclass(frozen=True)
class World:
    frame_id: str
    footprint: Polygon
    start: tuple[float, float, float]
    obstacles: tuple[tuple[str, Polygon], ...]
    near_miss_distance: float


_KEYS = {'frame_id', 'footprint', 'start', 'obstacles', 'near_miss_distance'}


def load_world(path: str | Path) -> World:
    return parse_world(load_yaml(path))


def parse_world(doc: dict) -> World:
    doc = mapping(doc, 'world', allowed=_KEYS, required=_KEYS)
    start = sequence(doc['start'], 'start')
    if len(start) != 3:
        raise SpecError('start', f'expected [x, y, yaw], got {start!r}')
    footprint = polygon(doc['footprint'], 'footprint')
    if not footprint.contains(Point(0.0, 0.0)):
        raise SpecError('footprint', 'must contain the robot origin (0, 0)')
    return World(
        frame_id=text(doc['frame_id'], 'frame_id'),
        footprint=footprint,
        start=tuple(number(v, f'start[{i}]') for i, v in enumerate(start)),
        obstacles=tuple((e['id'], e['polygon'])
                        for e in named_polygons(doc['obstacles'], 'obstacles')),
        near_miss_distance=number(doc['near_miss_distance'], 'near_miss_distance', lo=0.0))
