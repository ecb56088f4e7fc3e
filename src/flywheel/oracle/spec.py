"""OracleSpec: what one Oracle release knows about the world and the robot.

The spec is the only thing a release changes, which is what makes a safety fix local: a new keep-out
zone or a tighter limit ships as a new spec, never as a change to the Proposer. It validates
completely on load; a malformed spec raises a SpecError naming the field, and the Oracle refuses to
start with it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from shapely.geometry import Point, Polygon

from flywheel.errors import SpecError, SpecLimitError
from flywheel.yamldoc import (integer, load_yaml, mapping, named_polygons, number, polygon,
                              sequence, text)


@dataclass(frozen=True)
class Zone:
    """A named polygon: an obstacle, a keep-out zone, or a speed-limit zone (with max_speed)."""

    zone_id: str
    polygon: Polygon
    max_speed: float = math.inf


@dataclass(frozen=True)
class Limits:
    """Kinematic limits every trajectory point must respect."""

    max_speed: float
    max_acceleration: float
    max_yaw_rate: float
    max_curvature: float
    clearance_margin: float
    # Clearance is measured exactly up to this distance; beyond it is reported as +inf. (The
    # scoring work does not grow with it: flywheel/oracle/oracle.py's zone index.)
    clearance_horizon: float = 1.0
    # Curvature |w/v| is meaningless while turning in place; it is checked only above this speed.
    curvature_min_speed: float = 0.05


@dataclass(frozen=True)
class UncertaintyModel:
    """Prediction uncertainty u: how far a proposal leaves the envelope the spec was validated on.

    u = max(fraction of the vertices of the swept region's placements (the inflated footprints
            the swept hulls are built from) outside validated_region,
            clip((peak |v| of the trajectory and the command - validated_max_speed)
                 / validated_max_speed, 0, 1)).
    The Oracle computes it (flywheel/oracle/oracle.py); this is the spec's part.
    """

    validated_region: Polygon
    validated_max_speed: float
    threshold: float


@dataclass(frozen=True)
class CoverageGrid:
    """Audit coverage per grid cell in [0, 1]: how well audits have exercised the spec there.

    c_a = 1 - min(coverage of every cell that the bounding box of a swept hull touches); a cell
    outside the grid counts 0. ``cells[row][col]`` covers x in origin_x + col*resolution,
    y in origin_y + row*resolution. The Oracle computes it (flywheel/oracle/oracle.py).
    """

    origin: tuple[float, float]
    resolution: float
    cells: np.ndarray
    threshold: float


@dataclass(frozen=True)
class OracleSpec:
    version: str
    overlay_version: str
    frame_id: str
    footprint: Polygon
    obstacles: tuple[Zone, ...]
    keep_out: tuple[Zone, ...]
    speed_zones: tuple[Zone, ...]
    geofence: Polygon | None
    limits: Limits
    uncertainty: UncertaintyModel
    coverage: CoverageGrid
    # Evidence items per verdict at most (<= MAX_EVIDENCE), the worst kept.
    max_evidence: int = 16
    # What a verdict covers: the command held for command_hold (s) from any start within
    # anchor_tolerance (m) and anchor_yaw_tolerance (rad) of the first pose. The Gate honours a
    # verdict only for a hold no longer than this and a robot within those bounds.
    command_hold: float = 0.4
    anchor_tolerance: float = 0.05
    anchor_yaw_tolerance: float = 0.05
    # Largest distance (m) between any footprint point's true path and the chords the sweep is
    # built from; the swept region is inflated by it (flywheel/oracle/sweep.py).
    sweep_tolerance: float = 0.01


# The most evidence items one SafetySignals message holds (msg/SafetySignals.msg,
# Evidence[<=64]); also what bounds the Oracle's per-zone evidence work.
MAX_EVIDENCE = 64

_TOP_KEYS = {'version', 'overlay_version', 'frame_id', 'footprint', 'obstacles', 'keep_out',
             'speed_zones', 'geofence', 'limits', 'uncertainty', 'coverage', 'max_evidence',
             'command_hold', 'anchor_tolerance', 'anchor_yaw_tolerance', 'sweep_tolerance'}


@dataclass(frozen=True)
class SpecLimits:
    """How big a spec may be, checked on the raw document before any geometry is built. They keep
    parsing, building an Oracle and scoring one proposal bounded: bench/release_limits.py
    measures the worst specs inside them (scoring budget 10 ms at p99, against the Gate's 0.25 s
    verdict_timeout and proposals at up to 50 Hz)."""

    max_zones: int = 1024              # obstacles + keep_out (each is scored per proposal)
    max_speed_zones: int = 64
    max_vertices: int = 1024           # per polygon
    max_total_vertices: int = 16384    # every polygon of the spec
    max_coverage_cells: int = 16384


SPEC_LIMITS = SpecLimits()


def check_spec_size(doc: dict, limits: SpecLimits = SPEC_LIMITS) -> None:
    """Raise SpecLimitError if the document holds more than ``limits`` allow (linear, no
    geometry; malformed parts are left for the full validation to name)."""
    def listed(value) -> list:
        return value if isinstance(value, list) else []

    zones = len(listed(doc.get('obstacles'))) + len(listed(doc.get('keep_out')))
    if zones > limits.max_zones:
        raise SpecLimitError('obstacles+keep_out', f'{zones} zones > {limits.max_zones}')
    if len(listed(doc.get('speed_zones'))) > limits.max_speed_zones:
        raise SpecLimitError('speed_zones', f'{len(doc["speed_zones"])} zones > '
                             f'{limits.max_speed_zones}')
    uncertainty = doc.get('uncertainty') if isinstance(doc.get('uncertainty'), dict) else {}
    shapes = [('footprint', doc.get('footprint')), ('geofence', doc.get('geofence')),
              ('uncertainty.validated_region', uncertainty.get('validated_region'))]
    for key in ('obstacles', 'keep_out', 'speed_zones'):
        shapes += [(f'{key}[{i}].polygon', zone.get('polygon'))
                   for i, zone in enumerate(listed(doc.get(key))) if isinstance(zone, dict)]
    total = 0
    for field, shape in shapes:
        total += len(listed(shape))
        if len(listed(shape)) > limits.max_vertices:
            raise SpecLimitError(field, f'{len(shape)} vertices > {limits.max_vertices}')
    if total > limits.max_total_vertices:
        raise SpecLimitError('spec', f'{total} polygon vertices in all > '
                             f'{limits.max_total_vertices}')
    coverage = doc.get('coverage') if isinstance(doc.get('coverage'), dict) else {}
    cells = sum(len(listed(row)) for row in listed(coverage.get('cells')))
    if cells > limits.max_coverage_cells:
        raise SpecLimitError('coverage.cells', f'{cells} cells > {limits.max_coverage_cells}')


def load_spec(path: str | Path) -> OracleSpec:
    return parse_spec(load_yaml(path))


def parse_spec(doc: dict) -> OracleSpec:
    """Validate a spec document completely; raise SpecError naming the first bad field."""
    doc = mapping(doc, 'spec', allowed=_TOP_KEYS,
                  required={'version', 'frame_id', 'footprint', 'limits', 'uncertainty',
                            'coverage'})
    check_spec_size(doc)
    footprint = polygon(doc['footprint'], 'footprint')
    if not footprint.contains(Point(0.0, 0.0)):
        raise SpecError('footprint', 'must contain the robot origin (0, 0)')
    return OracleSpec(
        version=text(doc['version'], 'version'),
        overlay_version=text(doc.get('overlay_version', ''), 'overlay_version', allow_empty=True),
        frame_id=text(doc['frame_id'], 'frame_id'),
        footprint=footprint,
        obstacles=_zones(doc.get('obstacles', []), 'obstacles'),
        keep_out=_zones(doc.get('keep_out', []), 'keep_out'),
        speed_zones=_zones(doc.get('speed_zones', []), 'speed_zones',
                           {'max_speed': {'lo': 0.0}}),
        geofence=polygon(doc['geofence'], 'geofence') if 'geofence' in doc else None,
        limits=_limits(doc['limits']),
        uncertainty=_uncertainty(doc['uncertainty']),
        coverage=_coverage(doc['coverage']),
        max_evidence=integer(doc.get('max_evidence', 16), 'max_evidence', lo=1,
                             hi=MAX_EVIDENCE),
        command_hold=number(doc.get('command_hold', 0.4), 'command_hold', lo=0.0, lo_open=True,
                            hi=10.0),
        anchor_tolerance=number(doc.get('anchor_tolerance', 0.05), 'anchor_tolerance', lo=0.0,
                                hi=1.0),
        anchor_yaw_tolerance=number(doc.get('anchor_yaw_tolerance', 0.05), 'anchor_yaw_tolerance',
                                    lo=0.0, hi=math.pi),
        sweep_tolerance=number(doc.get('sweep_tolerance', 0.01), 'sweep_tolerance', lo=0.001,
                               hi=1.0),
    )


def _zones(value, field, extra=None) -> tuple[Zone, ...]:
    return tuple(Zone(e['id'], e['polygon'], e.get('max_speed', math.inf))
                 for e in named_polygons(value, field, extra))


def _limits(value) -> Limits:
    keys = {'max_speed', 'max_acceleration', 'max_yaw_rate', 'max_curvature', 'clearance_margin'}
    doc = mapping(value, 'limits', allowed=keys | {'curvature_min_speed', 'clearance_horizon'},
                  required=keys)
    positive = {'lo': 0.0, 'lo_open': True}
    limits = Limits(**{k: number(doc[k], f'limits.{k}', **positive) for k in sorted(keys)},
                    curvature_min_speed=number(doc.get('curvature_min_speed', 0.05),
                                               'limits.curvature_min_speed', **positive),
                    clearance_horizon=number(doc.get('clearance_horizon', 1.0),
                                             'limits.clearance_horizon', **positive))
    if limits.clearance_horizon < limits.clearance_margin:
        raise SpecError('limits.clearance_horizon',
                        f'must be >= clearance_margin ({limits.clearance_margin}), '
                        f'got {limits.clearance_horizon}')
    return limits


def _uncertainty(value) -> UncertaintyModel:
    keys = {'validated_region', 'validated_max_speed', 'threshold'}
    doc = mapping(value, 'uncertainty', allowed=keys, required=keys)
    return UncertaintyModel(
        validated_region=polygon(doc['validated_region'], 'uncertainty.validated_region'),
        validated_max_speed=number(doc['validated_max_speed'], 'uncertainty.validated_max_speed',
                                   lo=0.0, lo_open=True),
        threshold=number(doc['threshold'], 'uncertainty.threshold', lo=0.0, hi=1.0))


def _coverage(value) -> CoverageGrid:
    keys = {'origin', 'resolution', 'cells', 'threshold'}
    doc = mapping(value, 'coverage', allowed=keys, required=keys)
    origin = sequence(doc['origin'], 'coverage.origin')
    if len(origin) != 2:
        raise SpecError('coverage.origin', f'expected [x, y], got {origin!r}')
    rows = sequence(doc['cells'], 'coverage.cells')
    if not rows:
        raise SpecError('coverage.cells', 'needs at least one row')
    width = None
    grid = []
    for r, row in enumerate(rows):
        row = sequence(row, f'coverage.cells[{r}]')
        if width is None:
            width = len(row)
        if not row or len(row) != width:
            raise SpecError(f'coverage.cells[{r}]', f'expected {width} cells, got {len(row)}')
        grid.append([number(c, f'coverage.cells[{r}][{i}]', lo=0.0, hi=1.0)
                     for i, c in enumerate(row)])
    return CoverageGrid(
        origin=(number(origin[0], 'coverage.origin[0]'), number(origin[1], 'coverage.origin[1]')),
        resolution=number(doc['resolution'], 'coverage.resolution', lo=0.0, lo_open=True),
        cells=np.array(grid, dtype=np.float64),
        threshold=number(doc['threshold'], 'coverage.threshold', lo=0.0, hi=1.0))
