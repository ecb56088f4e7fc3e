"""The verifier: an independent, more expensive second opinion on one proposal.

When the Gate escalates (prediction or coverage uncertainty above its threshold) it holds the robot
and asks the verifier about that exact proposal, by digest. The verifier shares no geometry with
the Oracle (flywheel/oracle/sweep.py and oracle.py sweep convex hulls along chords): it samples the
exact unicycle motion densely and measures exact distances from every footprint placement,
against `Knowledge`, everything governance knows: the spec's obstacles, keep-out zones, geofence,
speed-limit zones and limits, a region around every recorded incident, and hazards known beyond the
spec. Two methods that agree are worth more than one method run twice.

What is checked, in the order the robot would meet it:

1. the command held for ``hold_s`` from the trajectory's first pose (what the Gate executes), from
   any start within the anchor tolerances: a short simulated rollout with the sim's unicycle model
   (flywheel.kinematics);
2. every trajectory segment: twist i held from pose i for its duration, and the last pose.

Invariants:

- Sound between samples: each segment is split so that no footprint point moves more than
  ``resolution`` from one sample to the next (|v| + |w|*R bounds the speed of every footprint
  point, R its farthest point from the robot origin), so every placement of the continuous motion
  lies within resolution/2 of a sampled one. A sample counts as touching a zone when its exact
  distance to it is at most that (plus, for the hold, anchor_tolerance + anchor_yaw_tolerance *
  (R + |v|*hold_s): a start off by those moves no point further). No hull, no chord.
- Fails closed: a proposal it cannot check is not safe, with its reason: MALFORMED for input it
  refuses (and for an internal error, detail says which), TIMEOUT once ``deadline_s`` has passed on
  the clock passed in (looked at between chunks of work and before answering: an answer after the
  deadline is no answer). `Verifier.check` never raises.
- Deterministic: the same knowledge, config and proposal give the same verification (but elapsed).
"""
from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import Point, Polygon
from shapely.geometry.polygon import orient

from flywheel.audit.incident import Severity
from flywheel.kinematics import advance
from flywheel.oracle.spec import Limits, OracleSpec, Zone
from flywheel.proposal import V, W, X, YAW, Proposal
from flywheel.settings import check_bounds, setting

NAN = math.nan


class VerifyReason(enum.IntEnum):
    """Why a proposal is (not) safe. SAFE only for a safe one; the others are unsafe or
    unchecked."""

    SAFE = 0
    COLLISION = 1          # within reach of an obstacle (the spec's, or a hazard known beyond it)
    KEEP_OUT = 2           # within reach of a keep-out zone
    INCIDENT_REGION = 3    # within reach of the region around a recorded incident
    GEOFENCE = 4           # the footprint leaves the geofence (or comes within reach of its edge)
    LIMIT = 5              # a kinematic limit, or a speed-limit zone's, is exceeded
    TIMEOUT = 6            # the deadline passed before the check was done
    MALFORMED = 7          # input it refuses to check, or could not check (see detail)


# One placement breaking several rules is reported by the first of these.
_PRECEDENCE = (VerifyReason.COLLISION, VerifyReason.KEEP_OUT, VerifyReason.INCIDENT_REGION,
               VerifyReason.GEOFENCE, VerifyReason.LIMIT)


@dataclass(frozen=True)
class VerifierConfig:
    """How thoroughly, and for how long, the verifier checks one proposal."""

    resolution: float = setting(0.02, 'Largest distance (m) any footprint point moves between two '
                                'samples; a sample within resolution/2 of a zone touches it.',
                                lo=0.001, hi=0.5, read_only=True)
    angular_resolution: float = setting(0.05, 'Largest turn (rad) between two samples.',
                                        lo=0.001, hi=1.0, read_only=True)
    incident_margin: float = setting(0.3, 'Radius (m) around a recorded incident (added to a '
                                     "near-miss's distance) that a footprint must keep out of.",
                                     lo=0.0, hi=10.0, read_only=True)
    deadline_s: float = setting(0.05, 'Past this (s) the check stops and answers TIMEOUT.',
                                lo=0.001, hi=60.0, read_only=True)
    horizon_s: float = setting(10.0, 'Longest trajectory (s) checked; a longer one is MALFORMED, '
                               'never partly checked.', lo=0.01, hi=600.0, read_only=True)
    max_hold_s: float = setting(2.0, 'Longest command hold (s) a request may ask for.',
                                lo=0.01, hi=60.0, read_only=True)
    max_points: int = setting(200, 'Most trajectory points checked.', lo=1, hi=1000,
                              read_only=True)
    max_sample_gap: float = setting(0.5, 'Longest time between two trajectory points (s).',
                                    lo=0.001, hi=60.0, read_only=True)
    kinematic_tolerance: float = setting(0.02, 'How far (m) a pose may lie from where the twist '
                                         'before it leads.', lo=0.0, hi=1.0, read_only=True)
    kinematic_yaw_tolerance: float = setting(0.02, 'The same for heading (rad).', lo=0.0, hi=1.0,
                                             read_only=True)
    command_tolerance: float = setting(1e-3, "How far the command may differ from the "
                                       "trajectory's first twist.", lo=0.0, hi=1.0,
                                       read_only=True)
    clearance_horizon: float = setting(1.0, 'Clearance is measured up to this (m); beyond, it is '
                                       'reported as +inf.', lo=0.0, hi=100.0, read_only=True)
    chunk_samples: int = setting(256, 'Placements checked between two looks at the clock.',
                                 lo=1, hi=1_000_000, read_only=True)
    max_samples: int = setting(20_000, 'Most placements one check may need; more is MALFORMED '
                               '(bounded work).', lo=1, hi=10_000_000, read_only=True)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            kind = type(f.default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    kind is int and not isinstance(value, int)):
                raise ValueError(f'{f.name}: need a {kind.__name__}, got {value!r}')
        check_bounds(self)


@dataclass(frozen=True)
class IncidentRegion:
    """Where a recorded incident happened, as a disc a footprint must keep out of: radius
    ``radius`` (how far from (x, y) harm was: a near-miss's reported distance, 0 for a collision)
    plus the verifier's incident_margin."""

    incident_id: str
    x: float
    y: float
    severity: Severity
    radius: float = 0.0

    def __post_init__(self):
        if not isinstance(self.incident_id, str):
            raise ValueError(f'incident_id: need a string, got {self.incident_id!r}')
        if not isinstance(self.severity, Severity):
            raise ValueError(f'severity: need a Severity, got {self.severity!r}')
        for name in ('x', 'y', 'radius'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f'{name}: need a finite number, got {value!r}')
        if self.radius < 0.0:
            raise ValueError(f'radius: must be >= 0, got {self.radius}')

    def polygon(self, margin: float) -> Polygon:
        """The disc with ``margin`` added (at least 1 mm across), as a 32-gon containing it."""
        r = max(self.radius + margin, 1e-3) / math.cos(math.pi / 32)
        return Point(self.x, self.y).buffer(r, quad_segs=8)

    @classmethod
    def of(cls, incident: Any) -> IncidentRegion | None:
        """The region of an incident: an IncidentReport (flywheel.audit.incident) or a ledger
        incident record (a dict); None for an INFO incident (nothing was harmed or nearly).
        ValueError for one without a finite position or a known severity."""
        get = incident.get if isinstance(incident, dict) else (
            lambda key, default=None: getattr(incident, key, default))
        severity = get('severity')
        try:
            severity = (Severity[severity] if isinstance(severity, str)
                        else Severity(int(severity)))
        except (KeyError, ValueError, TypeError):
            raise ValueError(f'severity: unknown value {severity!r}') from None
        if severity is Severity.INFO:
            return None
        distance = get('distance', 0.0)
        radius = float(distance) if severity is Severity.NEAR_MISS else 0.0
        ident = get('incident_id') or f'incident@{get("stamp_ns", 0)}'
        return cls(str(ident), float(get('x')), float(get('y')), severity,
                   radius if math.isfinite(radius) and radius >= 0.0 else 0.0)


@dataclass(frozen=True)
class Knowledge:
    """Everything governance knows about the world, as the verifier checks against it."""

    frame_id: str
    footprint: Polygon
    limits: Limits
    obstacles: tuple[Zone, ...] = ()
    keep_out: tuple[Zone, ...] = ()
    speed_zones: tuple[Zone, ...] = ()
    geofence: Polygon | None = None
    incidents: tuple[IncidentRegion, ...] = ()
    anchor_tolerance: float = 0.0
    anchor_yaw_tolerance: float = 0.0
    version: str = ''               # the Oracle version of the spec it was built from

    def __post_init__(self):
        if not isinstance(self.frame_id, str) or not self.frame_id:
            raise ValueError(f'frame_id: need a non-empty string, got {self.frame_id!r}')
        if not isinstance(self.footprint, Polygon) or not self.footprint.is_valid \
                or not self.footprint.contains(Point(0.0, 0.0)):
            raise ValueError('footprint: need a valid polygon containing the robot origin')
        if not isinstance(self.limits, Limits):
            raise ValueError(f'limits: need Limits, got {self.limits!r}')
        for name in ('obstacles', 'keep_out', 'speed_zones'):
            zones = getattr(self, name)
            if not isinstance(zones, tuple) or not all(
                    isinstance(z, Zone) and isinstance(z.polygon, Polygon) and z.polygon.is_valid
                    and z.polygon.area > 0.0 for z in zones):
                raise ValueError(f'{name}: need a tuple of Zones with valid polygons')
        if any(not z.max_speed >= 0.0 for z in self.speed_zones):
            raise ValueError('speed_zones: every max_speed must be >= 0')
        if self.geofence is not None and (not isinstance(self.geofence, Polygon)
                                          or not self.geofence.is_valid):
            raise ValueError('geofence: need a valid polygon or None')
        if not isinstance(self.incidents, tuple) or not all(
                isinstance(i, IncidentRegion) for i in self.incidents):
            raise ValueError('incidents: need a tuple of IncidentRegions')
        for name in ('anchor_tolerance', 'anchor_yaw_tolerance'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value < math.inf):
                raise ValueError(f'{name}: need a finite number >= 0, got {value!r}')

    @classmethod
    def of(cls, spec: OracleSpec, incidents: Iterable[Any] = (), hazards: Iterable[Zone] = (),
           speed_hazards: Iterable[Zone] = ()) -> Knowledge:
        """What governance knows: ``spec``'s zones, fence and limits; a region per incident
        (IncidentReports or ledger incident records; INFO ones carry none); ``hazards``,
        obstacles known beyond the spec (a survey, a map); ``speed_hazards``, speed-limit zones
        known beyond it."""
        regions = tuple(r for r in map(IncidentRegion.of, incidents) if r is not None)
        return cls(frame_id=spec.frame_id, footprint=spec.footprint, limits=spec.limits,
                   obstacles=spec.obstacles + tuple(hazards), keep_out=spec.keep_out,
                   speed_zones=spec.speed_zones + tuple(speed_hazards), geofence=spec.geofence,
                   incidents=regions, anchor_tolerance=spec.anchor_tolerance,
                   anchor_yaw_tolerance=spec.anchor_yaw_tolerance, version=spec.version)


_NO_BOUNDS = (NAN, NAN, NAN, NAN)


@dataclass(frozen=True)
class Verification:
    """The verifier's answer about one proposal (named by ``digest``).

    ``x``, ``y``: where: for COLLISION, KEEP_OUT and INCIDENT_REGION, and for LIMIT in a
    speed-limit zone, the point of the zone nearest the offending placement (a point of the zone
    itself); for GEOFENCE and a kinematic LIMIT the robot's position; for SAFE the robot's position at the smallest clearance (the first pose when
    nothing is within clearance_horizon); NaN for TIMEOUT and MALFORMED. ``min_clearance``: the
    smallest exact distance (m) of a sampled placement to an obstacle, keep-out zone or incident
    region, among those checked (+inf beyond clearance_horizon). ``bounds``: the box (xmin,
    ymin, xmax, ymax) of every placement checked (the region this answer speaks for).
    """

    digest: str
    safe: bool
    reason: VerifyReason
    min_clearance: float
    x: float
    y: float
    elapsed_ns: int
    zone_id: str = ''          # the zone, incident region or limit ('limit:max_speed') named
    time_s: float = NAN        # when along the hold (hold=True) or the trajectory (s)
    hold: bool = False         # whether it is in the command's hold
    limit: float = NAN         # LIMIT: the limit exceeded ...
    value: float = NAN         # ... and the value that exceeded it
    detail: str = ''
    bounds: tuple[float, float, float, float] = field(default=_NO_BOUNDS)

    def __post_init__(self):
        if not isinstance(self.reason, VerifyReason):
            raise ValueError(f'reason: need a VerifyReason, got {self.reason!r}')
        if self.safe != (self.reason is VerifyReason.SAFE):
            raise ValueError(f'safe: {self.safe} contradicts reason {self.reason.name}')


@dataclass(frozen=True)
class _Finding:
    reason: VerifyReason
    sample: int                # index into the motion (the order the robot meets it)
    x: float
    y: float
    zone_id: str = ''
    limit: float = NAN
    value: float = NAN
    detail: str = ''


@dataclass(frozen=True)
class _Motion:
    """Every sampled pose, in the order the robot meets them: the hold, then the trajectory."""

    poses: np.ndarray          # (S, 3)
    speed: np.ndarray          # (S,) |v| held there
    reach: np.ndarray          # (S,) distance within which a zone counts as touched
    time: np.ndarray           # (S,) s from the start of its part
    hold: np.ndarray           # (S,) bool: in the command's hold


class Verifier:
    """Checks proposals against one Knowledge; build a new Verifier to change what it knows."""

    def __init__(self, knowledge: Knowledge, config: VerifierConfig | None = None):
        self.knowledge = knowledge
        self.config = config if config is not None else VerifierConfig()
        ring = np.asarray(orient(knowledge.footprint, 1.0).exterior.coords)[:-1]
        self._body = ring[:, 0] + 1j * ring[:, 1]
        self._radius = float(np.abs(self._body).max())
        zones = ([(z.zone_id, z.polygon, VerifyReason.COLLISION) for z in knowledge.obstacles]
                 + [(z.zone_id, z.polygon, VerifyReason.KEEP_OUT) for z in knowledge.keep_out]
                 + [(r.incident_id, r.polygon(self.config.incident_margin),
                     VerifyReason.INCIDENT_REGION) for r in knowledge.incidents])
        self._zone_ids = [z[0] for z in zones]
        self._zones = np.array([z[1] for z in zones], dtype=object)
        self._zone_rank = np.array([_PRECEDENCE.index(z[2]) for z in zones], dtype=np.int64)
        self._zone_tree = STRtree(self._zones) if zones else None
        shapely.prepare(self._zones)
        self._speed_ids = [z.zone_id for z in knowledge.speed_zones]
        self._speed_zones = np.array([z.polygon for z in knowledge.speed_zones], dtype=object)
        self._speed_limits = np.array([z.max_speed for z in knowledge.speed_zones])
        self._speed_tree = STRtree(self._speed_zones) if len(self._speed_ids) else None
        self._fence = knowledge.geofence
        if self._fence is not None:
            self._fence_edge = self._fence.boundary
            shapely.prepare(self._fence)
            shapely.prepare(self._fence_edge)

    # -- the one verb -------------------------------------------------------------------------

    def check(self, proposal: Proposal, hold_s: float,
              now_ns_fn: Callable[[], int]) -> Verification:
        """Whether executing ``proposal`` (its command held for ``hold_s`` from its first pose,
        then its trajectory) stays clear of everything known; never raises."""
        try:
            start = int(now_ns_fn())
        except Exception as exc:  # noqa: BLE001 - fail closed: no clock, no answer in time
            return Verification(_digest(proposal), False, VerifyReason.MALFORMED, NAN, NAN, NAN,
                                0, detail=f'the clock failed: {type(exc).__name__}: {exc}'[:200])
        digest = _digest(proposal)
        state = _State(start, start + round(self.config.deadline_s * 1e9), now_ns_fn)
        try:
            return self._check(proposal, hold_s, digest, state)
        except Exception as exc:  # noqa: BLE001 - fail closed: what cannot be checked is unsafe
            return state.answer(digest, _Finding(
                VerifyReason.MALFORMED, -1, NAN, NAN,
                detail=f'could not be checked: {type(exc).__name__}: {exc}'[:200]))

    # -- the steps ----------------------------------------------------------------------------

    def _check(self, proposal: Proposal, hold_s: float, digest: str,
               state: _State) -> Verification:
        defect = self._malformed(proposal, hold_s)
        if defect:
            return state.answer(digest, _Finding(VerifyReason.MALFORMED, -1, NAN, NAN,
                                                 detail=defect))
        limit = self._limits(proposal)
        if limit is not None:
            return state.answer(digest, limit)
        motion = self._motion(proposal, float(hold_s))
        if isinstance(motion, str):
            return state.answer(digest, _Finding(VerifyReason.MALFORMED, -1, NAN, NAN,
                                                 detail=motion))
        state.motion = motion
        chunk = self.config.chunk_samples
        for lo in range(0, len(motion.poses), chunk):
            if state.late():
                return state.answer(digest, None)
            found = self._chunk(motion, lo, min(lo + chunk, len(motion.poses)), state)
            if found is not None:
                return state.answer(digest, found)
        return state.answer(digest, _Finding(VerifyReason.SAFE, -1, NAN, NAN))

    def _malformed(self, p: Proposal, hold_s: float) -> str:
        """What makes the request uncheckable ('' when nothing does)."""
        c = self.config
        if not isinstance(hold_s, (int, float)) or isinstance(hold_s, bool) \
                or not 0.0 < hold_s <= c.max_hold_s:
            return f'hold_s: need (0, {c.max_hold_s}] s, got {hold_s!r}'
        if p.frame_id != self.knowledge.frame_id:
            return f'frame_id {p.frame_id!r}, expected {self.knowledge.frame_id!r}'
        t_ns = np.asarray(p.t_ns)
        states = np.asarray(p.states)
        n = len(t_ns)
        if n == 0:
            return 'the trajectory has no points'
        if n > c.max_points:
            return f'{n} points > max_points={c.max_points}'
        if t_ns.dtype.kind not in 'iu' or states.dtype.kind != 'f' or states.shape != (n, 5):
            return f'{n} int times and (N, 5) float states expected, got {t_ns.dtype} times and ' \
                   f'{states.dtype} states of shape {states.shape}'
        command = np.asarray(p.command, dtype=np.float64)
        if command.shape != (2,) or not np.isfinite(states).all() \
                or not np.isfinite(command).all():
            return 'a state or the command is not finite'
        if t_ns[0] != 0:
            return f'time_from_start[0]={int(t_ns[0])} ns, must be 0'
        gaps = np.diff(t_ns)
        if (gaps <= 0).any():
            return 'time_from_start is not strictly increasing'
        if t_ns[-1] > round(c.horizon_s * 1e9):
            return f'horizon {t_ns[-1] * 1e-9:.6g} s > horizon_s={c.horizon_s}'
        if len(gaps) and gaps.max() > round(c.max_sample_gap * 1e9):
            return f'{gaps.max() * 1e-9:.6g} s between two points > max_sample_gap'
        if np.abs(states[0, V:W + 1] - command).max() > c.command_tolerance:
            return f'command {tuple(command)} is not the first twist {tuple(states[0, V:W + 1])}'
        if n > 1:
            led = advance(states[:-1, X:YAW + 1], states[:-1, V:W + 1], gaps * 1e-9)
            miss = np.hypot(led[:, 0] - states[1:, X], led[:, 1] - states[1:, 1])
            turn = np.abs((led[:, 2] - states[1:, YAW] + np.pi) % (2 * np.pi) - np.pi)
            off = (miss > c.kinematic_tolerance) | (turn > c.kinematic_yaw_tolerance)
            if off.any():
                i = int(np.argmax(off))
                return f'point {i + 1} is {miss[i]:.4g} m, {turn[i]:.4g} rad from where ' \
                       f'twist {i} leads'
        return ''

    def _limits(self, p: Proposal) -> _Finding | None:
        """The first point (the command counts at the first) exceeding a kinematic limit."""
        lim, states = self.knowledge.limits, p.states
        v = np.abs(np.append(p.command[0], states[:, V]))      # index 0: the command
        w = np.abs(np.append(p.command[1], states[:, W]))
        curvature = np.where(v > lim.curvature_min_speed, w / np.maximum(v, 1e-12), 0.0)
        accel = np.zeros_like(v)
        if len(states) > 1:
            accel[2:] = np.abs(np.diff(states[:, V])) / (np.diff(p.t_ns) * 1e-9)
        first = None
        for name, values, limit in (('limit:max_speed', v, lim.max_speed),
                                    ('limit:max_yaw_rate', w, lim.max_yaw_rate),
                                    ('limit:max_curvature', curvature, lim.max_curvature),
                                    ('limit:max_acceleration', accel, lim.max_acceleration)):
            over = np.flatnonzero(values > limit * (1.0 + 1e-9))
            if len(over) and (first is None or over[0] < first[0]):
                first = (int(over[0]), name, float(values[over[0]]), limit)
        if first is None:
            return None
        i, name, value, limit = first
        point = states[max(i - 1, 0)]
        return _Finding(VerifyReason.LIMIT, -1, float(point[X]), float(point[1]), name, limit,
                        value, f'{name.partition(":")[2]} {value:.4g} > {limit:.4g}'
                        + (' (the command)' if i == 0 else f' at point {i - 1}'))

    def _motion(self, p: Proposal, hold_s: float) -> _Motion | str:
        """Every sample to check: the hold from the first pose, then each trajectory segment
        and the last pose; a str when that would be more than max_samples."""
        c, k = self.config, self.knowledge
        states, n = p.states, len(p.states)
        v, w = p.command
        base = 0.5 * c.resolution
        hold_reach = base + k.anchor_tolerance + k.anchor_yaw_tolerance * (
            self._radius + abs(v) * hold_s)
        starts = np.concatenate(([states[0, :YAW + 1]], states[:, :YAW + 1]))
        twists = np.concatenate(([(v, w)], states[:, V:W + 1]))
        durations = np.concatenate(([hold_s], np.diff(p.t_ns) * 1e-9, [0.0]))
        t0 = np.concatenate(([0.0], p.t_ns * 1e-9))
        reach = np.concatenate(([hold_reach], np.full(n, base)))
        point_speed = np.abs(twists[:, 0]) + np.abs(twists[:, 1]) * self._radius
        steps = np.maximum(np.ceil(point_speed * durations / c.resolution),
                           np.ceil(np.abs(twists[:, 1]) * durations / c.angular_resolution))
        steps = np.maximum(steps, 1.0)
        steps[durations == 0.0] = 0.0
        total = float(np.sum(steps + 1.0))
        if total > c.max_samples:
            return f'{total:.0f} placements to check > max_samples={c.max_samples}'
        steps = steps.astype(np.int64)
        count = steps + 1
        owner = np.repeat(np.arange(len(count)), count)
        index = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
        offset = index * np.divide(durations, steps, out=np.zeros_like(durations),
                                   where=steps > 0)[owner]
        poses = advance(starts[owner], twists[owner], offset)
        return _Motion(poses, np.abs(twists[owner, 0]), reach[owner], t0[owner] + offset,
                       owner == 0)

    def _chunk(self, m: _Motion, lo: int, hi: int, state: _State) -> _Finding | None:
        """The first finding among samples lo..hi-1, and their clearances and box."""
        poses = m.poses[lo:hi]
        placed = self._place(poses)
        reach = m.reach[lo:hi]
        state.add_bounds(shapely.bounds(placed))
        found: list[_Finding] = []
        if self._zone_tree is not None:
            idx, dist = self._zone_tree.query_nearest(
                placed, max_distance=self.config.clearance_horizon, return_distance=True)
            clearance = np.full(len(placed), math.inf)
            np.minimum.at(clearance, idx[0], dist)
            state.add_clearance(clearance, lo)
            sample, zone = self._touching(self._zone_tree, placed, reach)
            if len(sample):
                first = sample.min()
                at = zone[sample == first]
                z = int(at[np.lexsort((at, self._zone_rank[at]))[0]])
                line = shapely.shortest_line(placed[first], self._zones[z])
                x, y = shapely.get_coordinates(line)[1]
                gap = float(shapely.length(line))
                found.append(_Finding(_PRECEDENCE[self._zone_rank[z]], lo + int(first),
                                      float(x), float(y), self._zone_ids[z],
                                      detail=f'{gap:.4g} m from {self._zone_ids[z]!r}'))
        if self._fence is not None:
            out = ~(shapely.covers(self._fence, placed)
                    & (shapely.distance(placed, self._fence_edge) >= reach))
            if out.any():
                i = int(np.argmax(out))
                found.append(_Finding(VerifyReason.GEOFENCE, lo + i, float(poses[i, 0]),
                                      float(poses[i, 1]), 'geofence',
                                      detail='the footprint leaves the geofence or comes within '
                                      f'{reach[i]:.4g} m of its edge'))
        if self._speed_tree is not None:
            sample, zone = self._touching(self._speed_tree, placed, reach)
            speed = m.speed[lo:hi][sample]
            over = speed > self._speed_limits[zone] * (1.0 + 1e-9)
            if over.any():
                sample, zone, speed = sample[over], zone[over], speed[over]
                k = int(np.lexsort((zone, sample))[0])
                i, z = int(sample[k]), int(zone[k])
                line = shapely.shortest_line(placed[i], self._speed_zones[z])
                x, y = shapely.get_coordinates(line)[1]
                found.append(_Finding(VerifyReason.LIMIT, lo + i, float(x), float(y),
                                      self._speed_ids[z],
                                      float(self._speed_limits[z]), float(speed[k]),
                                      f'speed {speed[k]:.4g} > {self._speed_limits[z]:.4g} in '
                                      f'{self._speed_ids[z]!r}'))
        if not found:
            return None
        return min(found, key=lambda f: (f.sample, _PRECEDENCE.index(f.reason)))

    def _touching(self, tree: STRtree, placed: np.ndarray,
                  reach: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sample, zone) pairs within each sample's reach (exact distances)."""
        samples, zones = [], []
        for d in np.unique(reach):
            rows = np.flatnonzero(reach == d)
            s, z = tree.query(placed[rows], predicate='dwithin', distance=float(d))
            samples.append(rows[s])
            zones.append(z)
        return np.concatenate(samples), np.concatenate(zones)

    def _place(self, poses: np.ndarray) -> np.ndarray:
        """The footprint at each pose (S, 3): shapely polygons (S,)."""
        vertices = ((poses[:, 0] + 1j * poses[:, 1])[:, None]
                    + np.exp(1j * poses[:, 2])[:, None] * self._body)
        xy = np.stack((vertices.real, vertices.imag), axis=-1)
        return shapely.polygons(np.concatenate((xy, xy[:, :1]), axis=1))


class _State:
    """One check's clock, clearance and box so far."""

    def __init__(self, start: int, deadline: int, now_ns_fn: Callable[[], int]):
        self.start, self.deadline, self.now_ns_fn = start, deadline, now_ns_fn
        self.clearance, self.nearest = math.inf, -1
        self.box = np.array([math.inf, math.inf, -math.inf, -math.inf])
        self.motion: _Motion | None = None

    def late(self) -> bool:
        return int(self.now_ns_fn()) > self.deadline

    def add_clearance(self, clearance: np.ndarray, lo: int) -> None:
        i = int(np.argmin(clearance))
        if clearance[i] < self.clearance:
            self.clearance, self.nearest = float(clearance[i]), lo + i

    def add_bounds(self, bounds: np.ndarray) -> None:
        self.box = np.concatenate((np.minimum(self.box[:2], bounds[:, :2].min(axis=0)),
                                   np.maximum(self.box[2:], bounds[:, 2:].max(axis=0))))

    def answer(self, digest: str, found: _Finding | None) -> Verification:
        """The Verification for ``found`` (None: the deadline passed), or TIMEOUT if it comes
        too late."""
        try:
            now = int(self.now_ns_fn())
        except Exception:  # noqa: BLE001 - no clock: the answer cannot be known to be in time
            now = self.deadline + 1
        elapsed = max(now - self.start, 0)
        box = tuple(self.box.tolist()) if np.isfinite(self.box).all() else _NO_BOUNDS
        clearance = self.clearance
        if found is None or now > self.deadline:
            return Verification(digest, False, VerifyReason.TIMEOUT, clearance, NAN, NAN, elapsed,
                                detail=f'deadline passed after {elapsed * 1e-6:.3f} ms',
                                bounds=box)
        m = self.motion
        x, y, time_s, hold = found.x, found.y, NAN, False
        if found.reason is VerifyReason.SAFE and m is not None:
            i = self.nearest if self.nearest >= 0 else 0
            x, y = float(m.poses[i, 0]), float(m.poses[i, 1])
        if found.sample >= 0 and m is not None:
            time_s, hold = float(m.time[found.sample]), bool(m.hold[found.sample])
        return Verification(digest, found.reason is VerifyReason.SAFE, found.reason, clearance,
                            x, y, elapsed, found.zone_id, time_s, hold, found.limit,
                            found.value, found.detail, box)


def _digest(proposal: Any) -> str:
    try:
        return str(proposal.digest)
    except Exception:  # noqa: BLE001 - a proposal that cannot be hashed is still answered
        return ''
