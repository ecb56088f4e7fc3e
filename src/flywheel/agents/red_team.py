"""Red team: adversarial proposals against an Oracle release, offline, and the flaws they expose.

Probes are made where an Oracle is most likely wrong: uniformly over the operating area, just
outside the boundaries of its obstacles and zones (heading in, or passing along them), around
their corners (arcs that cut them), across speed-limit boundaries near the limit, towards recorded
incidents, and then ever closer around every flaw found (start, heading, speed and turn jittered),
flaw after flaw until the refinement budget is spent. Each probe is a regression case
(flywheel.agents.cases), scored by the real Oracle and decided by the Gate's risk policy
(flywheel.agents.judge); every probe the policy would approve were uncertainty not escalated is
also checked by the verifier.

Invariant: a Flaw is a probe the Gate would approve (ALLOW or DEGRADE) that the verifier finds
unsafe (COLLISION, KEEP_OUT, INCIDENT_REGION, GEOFENCE or LIMIT). A probe the verifier could not
check (TIMEOUT, MALFORMED) is no flaw and no clearance: it is counted as unverified. Pure: the
spec, policy, verifier, random generator and clock are passed in; the same inputs give the same
report.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from flywheel.agents.cases import probe
from flywheel.agents.judge import Judge
from flywheel.enforcement.decision import Action
from flywheel.enforcement.policy import RiskPolicy
from flywheel.oracle.spec import OracleSpec
from flywheel.release.regression import Case
from flywheel.settings import check_bounds, setting
from flywheel.verify.verifier import IncidentRegion, Verification, Verifier, VerifyReason

UNSAFE = frozenset({VerifyReason.COLLISION, VerifyReason.KEEP_OUT, VerifyReason.INCIDENT_REGION,
                    VerifyReason.GEOFENCE, VerifyReason.LIMIT})


class Strategy(enum.Enum):
    EXPLORE = 'explore'          # anywhere over the operating area
    NEAR_ZONE = 'near_zone'      # just outside an obstacle's or zone's boundary
    CORNER_CUT = 'corner_cut'    # arcs around a zone's corner
    OVERSPEED = 'overspeed'      # across a speed-limit boundary near the limit, or near max_speed
    INCIDENT = 'incident'        # towards a recorded incident
    REFINE = 'refine'            # around a flaw already found
    SEED = 'seed'                # a flaw of an earlier run, probed again


@dataclass(frozen=True)
class RedTeamConfig:
    explore: int = setting(1000, 'Probes anywhere over the operating area.', lo=0, hi=10**7)
    near_zone: int = setting(800, 'Probes just outside obstacle and zone boundaries.', lo=0,
                             hi=10**7)
    corner_cut: int = setting(300, 'Probes around zone corners.', lo=0, hi=10**7)
    overspeed: int = setting(300, 'Probes across speed-limit boundaries near the limit.', lo=0,
                             hi=10**7)
    incident: int = setting(200, 'Probes towards recorded incidents.', lo=0, hi=10**7)
    refine: int = setting(3000, 'Probes around found flaws, at most.', lo=0, hi=10**7)
    refine_per_flaw: int = setting(6, 'Probes around each flaw refined.', lo=1, hi=1000)
    points: int = setting(15, 'Points per probe.', lo=2, hi=200)
    dt: float = setting(0.1, 'Seconds between probe points.', lo=0.01, hi=0.5)
    standoff: float = setting(1.0, 'Boundary probes start up to this far (m) beyond the '
                              'footprint.', lo=0.0, hi=100.0)
    jitter: float = setting(0.1, 'Refinement: standard deviation of the start (m).', lo=0.0,
                            hi=10.0)
    yaw_jitter: float = setting(0.3, 'Refinement: standard deviation of the heading (rad).',
                                lo=0.0, hi=math.pi)

    def __post_init__(self):
        check_bounds(self)
        if self.points * self.dt > 10.0:
            raise ValueError(f'points: {self.points} points {self.dt} s apart last longer '
                             'than 10 s')


@dataclass(frozen=True)
class Flaw:
    """A probe the Gate would approve and the verifier finds unsafe."""

    case: Case
    strategy: Strategy
    action: Action
    verification: Verification

    @property
    def x(self) -> float:
        return self.verification.x

    @property
    def y(self) -> float:
        return self.verification.y

    @property
    def reason(self) -> VerifyReason:
        return self.verification.reason


@dataclass(frozen=True)
class RedTeamReport:
    oracle_version: str
    probes: int
    flaws: tuple[Flaw, ...]
    strategies: dict = field(default_factory=dict)   # strategy value -> [probes, flaws]
    actions: dict = field(default_factory=dict)      # action name -> probes
    unverified: int = 0
    # coverage cell (row, col) of the spec's grid -> [probes checked by the verifier whose
    # region touches it, of them unsafe ones the policy would approve unescalated]
    audit: dict = field(default_factory=dict)


class RedTeam:
    def __init__(self, config: RedTeamConfig | None = None):
        self.config = config if config is not None else RedTeamConfig()

    def attack(self, spec: OracleSpec, policy: RiskPolicy, verifier: Verifier,
               rng: np.random.Generator, now_ns_fn: Callable[[], int],
               incidents: Iterable = (), seeds: Iterable[Case] = ()) -> RedTeamReport:
        """Probe ``spec`` (decided by ``policy``) and ask ``verifier`` about what it approves.
        ``incidents``: IncidentRegions, reports or ledger records to probe towards; ``seeds``:
        flaws of earlier runs, probed again and refined around."""
        run = _Run(self.config, spec, policy, verifier, rng, now_ns_fn)
        regions = [r for r in (i if isinstance(i, IncidentRegion) else IncidentRegion.of(i)
                               for i in incidents) if r is not None]
        for case in seeds:
            run.try_case(case, Strategy.SEED)
        c = self.config
        for strategy, count, make in (
                (Strategy.EXPLORE, c.explore, run.explore),
                (Strategy.NEAR_ZONE, c.near_zone, run.near_zone),
                (Strategy.CORNER_CUT, c.corner_cut, run.corner_cut),
                (Strategy.OVERSPEED, c.overspeed, run.overspeed),
                (Strategy.INCIDENT, c.incident if regions else 0,
                 lambda: run.incident(regions))):
            for _ in range(count):
                start, twists = make()
                if start is not None:
                    run.try_twists(strategy, start, twists)
        run.refine()
        return run.report()


class _Run:
    """One attack: probe generation, judging and bookkeeping."""

    def __init__(self, config: RedTeamConfig, spec: OracleSpec, policy: RiskPolicy,
                 verifier: Verifier, rng: np.random.Generator, now_ns_fn: Callable[[], int]):
        self.c, self.spec, self.verifier, self.rng, self.now = (config, spec, verifier, rng,
                                                               now_ns_fn)
        self.judge = Judge(spec, policy)
        area = spec.geofence if spec.geofence is not None else spec.uncertainty.validated_region
        self.area = area.bounds
        self.radius = max(math.hypot(x, y) for x, y in spec.footprint.exterior.coords)
        zones = [z.polygon for z in spec.obstacles + spec.keep_out]
        self.zones = [orient(p, 1.0) for p in zones]
        self.inside = STRtree(zones) if zones else None
        self.speed_zones = [(orient(z.polygon, 1.0), z.max_speed) for z in spec.speed_zones]
        lim = spec.limits
        self.v_max = 0.999 * lim.max_speed
        self.w_max = 0.999 * lim.max_yaw_rate
        self.probes = 0
        self.flaws: list[Flaw] = []
        self.seen: set[str] = set()
        self.strategies: dict[str, list[int]] = {}
        self.actions: dict[str, int] = {}
        self.unverified = 0
        self.audit: dict[tuple[int, int], list[int]] = {}

    # -- making probes --------------------------------------------------------------------------

    def _turn(self, v: float, w: float) -> float:
        """w within the yaw-rate and curvature limits at speed v."""
        lim = self.spec.limits
        cap = self.w_max
        if abs(v) > lim.curvature_min_speed:
            cap = min(cap, 0.999 * lim.max_curvature * abs(v))
        return float(np.clip(w, -cap, cap))

    def _twists(self, v: float, w: float) -> list[tuple[float, float]]:
        v = float(np.clip(v, 0.0, self.v_max))
        return [(v, self._turn(v, w))] * self.c.points

    def _speed(self) -> float:
        return self.rng.uniform(0.15, 1.0) * self.v_max

    def _free(self, x: float, y: float) -> bool:
        """Whether the robot origin at (x, y) lies outside every obstacle and keep-out zone."""
        return self.inside is None or not len(
            self.inside.query(shapely.Point(x, y), predicate='intersects'))

    def explore(self):
        x0, y0, x1, y1 = self.area
        x, y = self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)
        if not self._free(x, y):
            return None, None
        v = self._speed()
        return (x, y, self.rng.uniform(-math.pi, math.pi)), self._twists(
            v, self.rng.normal(0.0, 0.3) * self.w_max)

    def _edge_point(self, polygon: Polygon):
        """A random point of the boundary, the unit tangent there (counter-clockwise) and the
        outward normal."""
        xy = np.asarray(polygon.exterior.coords)
        seg = np.diff(xy, axis=0)
        lengths = np.hypot(seg[:, 0], seg[:, 1])
        i = int(self.rng.choice(len(seg), p=lengths / lengths.sum()))
        t = seg[i] / lengths[i]
        p = xy[i] + seg[i] * self.rng.uniform()
        return p, t, np.array([t[1], -t[0]])

    def near_zone(self):
        if not self.zones:
            return None, None
        polygon = self.zones[int(self.rng.integers(len(self.zones)))]
        p, t, n = self._edge_point(polygon)
        start = p + n * (self.radius + self.rng.uniform(0.0, self.c.standoff))
        if self.rng.uniform() < 0.5:     # heading in
            heading = math.atan2(-n[1], -n[0]) + self.rng.uniform(-1.2, 1.2)
        else:                            # passing along
            heading = math.atan2(t[1], t[0]) + (math.pi if self.rng.uniform() < 0.5 else 0.0)
            heading += self.rng.normal(0.0, 0.15)
        if not self._free(*start):
            return None, None
        return ((start[0], start[1], heading),
                self._twists(self._speed(), self.rng.normal(0.0, 0.2) * self.w_max))

    def corner_cut(self):
        if not self.zones:
            return None, None
        polygon = self.zones[int(self.rng.integers(len(self.zones)))]
        xy = np.asarray(polygon.exterior.coords)[:-1]
        k = int(self.rng.integers(len(xy)))
        corner, before = xy[k], xy[k - 1]
        edge = corner - before
        length = float(np.hypot(*edge))
        if length == 0.0:
            return None, None
        t = edge / length
        n = np.array([t[1], -t[0]])
        lead = self.rng.uniform(0.3, 1.5)
        start = corner - t * lead + n * (self.radius + self.rng.uniform(0.0, 0.5))
        v = self._speed()
        # the zone lies to the left of a counter-clockwise edge's outside: turn left round it
        w = v / self.rng.uniform(0.3, 2.0)
        if not self._free(*start):
            return None, None
        return (start[0], start[1], math.atan2(t[1], t[0])), self._twists(v, w)

    def overspeed(self):
        if self.speed_zones and self.rng.uniform() < 0.7:
            polygon, limit = self.speed_zones[int(self.rng.integers(len(self.speed_zones)))]
            p, _, n = self._edge_point(polygon)
            start = p + n * (self.radius + self.rng.uniform(0.0, self.c.standoff))
            heading = math.atan2(-n[1], -n[0]) + self.rng.uniform(-0.6, 0.6)
            v = self.rng.uniform(0.75, 1.25) * limit
        else:
            x0, y0, x1, y1 = self.area
            start = np.array([self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)])
            heading = self.rng.uniform(-math.pi, math.pi)
            v = self.rng.uniform(0.85, 1.0) * self.v_max
        if not self._free(*start):
            return None, None
        return (start[0], start[1], heading), self._twists(v, self.rng.normal(0.0, 0.1))

    def incident(self, regions: list[IncidentRegion]):
        r = regions[int(self.rng.integers(len(regions)))]
        bearing = self.rng.uniform(-math.pi, math.pi)
        distance = self.radius + r.radius + self.rng.uniform(0.0, self.c.standoff + 0.2)
        x, y = r.x + distance * math.cos(bearing), r.y + distance * math.sin(bearing)
        heading = bearing + math.pi + self.rng.uniform(-0.6, 0.6)
        if not self._free(x, y):
            return None, None
        return (x, y, heading), self._twists(self._speed(), self.rng.normal(0.0, 0.15))

    def refine(self) -> None:
        """Probe around every flaw found (those found meanwhile too), until the budget is
        spent."""
        budget, i = self.c.refine, 0
        while budget > 0 and i < len(self.flaws):
            case = self.flaws[i].case
            i += 1
            for _ in range(min(self.c.refine_per_flaw, budget)):
                budget -= 1
                v0, w0 = case.twists[0]
                start = (case.start[0] + self.rng.normal(0.0, self.c.jitter),
                         case.start[1] + self.rng.normal(0.0, self.c.jitter),
                         case.start[2] + self.rng.normal(0.0, self.c.yaw_jitter))
                v = v0 * self.rng.uniform(0.85, 1.15)
                if self._free(start[0], start[1]):
                    self.try_twists(Strategy.REFINE, start,
                                    self._twists(v, w0 + self.rng.normal(0.0, 0.15)))

    # -- judging --------------------------------------------------------------------------------

    def try_twists(self, strategy: Strategy, start, twists) -> None:
        number = self.strategies.get(strategy.value, [0, 0])[0]
        self.try_case(probe(f'{strategy.value}-{number:05d}', start, twists, self.c.dt),
                      strategy)

    def try_case(self, case: Case, strategy: Strategy) -> None:
        tally = self.strategies.setdefault(strategy.value, [0, 0])
        tally[0] += 1
        self.probes += 1
        proposal = case.proposal()
        judged = self.judge(proposal)
        self.actions[judged.action.name] = self.actions.get(judged.action.name, 0) + 1
        if not judged.unescalated.approves:
            return
        check = self.verifier.check(proposal, self.spec.command_hold, self.now)
        unsafe = check.reason in UNSAFE
        for cell in self._cells(check.bounds):
            counts = self.audit.setdefault(cell, [0, 0])
            counts[0] += 1
            counts[1] += int(unsafe)
        if not judged.action.approves:
            return
        if unsafe:
            if proposal.digest not in self.seen:
                self.seen.add(proposal.digest)
                tally[1] += 1
                self.flaws.append(Flaw(case, strategy, judged.action, check))
        elif not check.safe:
            self.unverified += 1

    def _cells(self, bounds) -> list[tuple[int, int]]:
        grid = self.spec.coverage
        if not all(map(math.isfinite, bounds)):
            return []
        rows, cols = grid.cells.shape
        ox, oy = grid.origin
        c0, c1 = (math.floor((b - ox) / grid.resolution) for b in (bounds[0], bounds[2]))
        r0, r1 = (math.floor((b - oy) / grid.resolution) for b in (bounds[1], bounds[3]))
        return [(r, c) for r in range(max(r0, 0), min(r1, rows - 1) + 1)
                for c in range(max(c0, 0), min(c1, cols - 1) + 1)]

    def report(self) -> RedTeamReport:
        return RedTeamReport(self.spec.version, self.probes, tuple(self.flaws),
                             {k: list(v) for k, v in self.strategies.items()},
                             dict(self.actions), self.unverified,
                             {k: list(v) for k, v in self.audit.items()})
