"""Refiner: the smallest local corrections to an Oracle spec that answer the triage queue, as a
candidate spec and a governance batch (corrections, regression evidence, rollout plan).

Corrections, one per queue item (best first):

- keep-out family (collision, keep-out, incident-region and geofence flaws; incidents): ADD a
  keep-out zone around the item's evidence (the verifier's points of contact, each incident's
  region), or GROW the governance zone already there (within ``reach``);
- speed family (LIMIT flaws): TIGHTEN the limit of the speed-limit zone (or the global limit)
  the flaws exceeded, or ADD / GROW a speed-limit zone around the points of the zone the
  verifier found exceeded, at the limit it reported;
- UPDATE_COVERAGE: cells of the audit-coverage grid the red team exercised thoroughly
  (``coverage_min_probes`` probes) with no flaw hiding behind an escalation are raised to
  ``coverage_value``, so they stop escalating.

A zone is the k-DOP (``directions`` half-planes, so at most that many vertices) of its evidence
grown by a margin. The margin is sized adaptively: a new zone gets ``base_margin``; each time
flaws recur at a zone it is grown with the margin multiplied by ``growth`` (the generation is kept
in its id, ``fw-0007-g2``), up to ``max_margin``. Where that margin would lose golden basin
members, smaller margins are tried down to ``min_margin`` (the Oracle's own inflation of the
swept region, a few centimetres, covers the verifier's reach beyond it); then the evidence is
split in two along its longest axis (``max_split_depth`` times); a correction that still loses
more of the basin than allowed is REJECTED and reported, never shipped. ``mode='fixed'`` is the
baseline: a square of side ``fixed_size`` centred on each item, never grown or split.

Invariants:

- the basin is counted cumulatively against the first release (flywheel.agents.basin): no batch
  takes the members lost since the first release, in any batch, beyond ``max_basin_loss``;
- a correction is judged exactly: the action under the working spec plus one zone is the most
  restrictive of the action under the working spec and the action under the spec holding only
  that zone (every policy rule is a threshold on a risk that is a maximum over zones), and the
  whole candidate is judged again at the end (basin, flaws, incidents) before anything is
  emitted;
- the candidate passes the release schema and SpecLimits, and its regression suite (golden basin
  members allowed, flaw and incident cases blocked) passes 100 % against it (candidate.py
  bundles it with flywheel.release to be sure). Nothing is signed: operators sign and push.
"""
from __future__ import annotations

import copy
import dataclasses
import enum
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import Polygon

from flywheel.agents.basin import Basin, allowed
from flywheel.agents.cases import as_expected, held, suite_doc
from flywheel.agents.judge import Judge
from flywheel.agents.red_team import Flaw
from flywheel.agents.triage import Family, QueueItem
from flywheel.enforcement.decision import Action
from flywheel.enforcement.policy import RiskPolicy
from flywheel.oracle.spec import SPEC_LIMITS, OracleSpec, Zone, parse_spec
from flywheel.release.regression import MAX_CASES, Case, Expect
from flywheel.release.rollout import DEFAULT_PLAN, RolloutPlan
from flywheel.settings import check_bounds, setting
from flywheel.verify.verifier import IncidentRegion, VerifierConfig

_LIMIT_NAMES = {'limit:max_speed': 'max_speed', 'limit:max_yaw_rate': 'max_yaw_rate',
                'limit:max_curvature': 'max_curvature',
                'limit:max_acceleration': 'max_acceleration'}


class CorrectionKind(enum.Enum):
    ADD_KEEP_OUT = 'add_keep_out'
    GROW_KEEP_OUT = 'grow_keep_out'
    ADD_SPEED_ZONE = 'add_speed_zone'
    GROW_SPEED_ZONE = 'grow_speed_zone'
    TIGHTEN_LIMIT = 'tighten_limit'
    UPDATE_COVERAGE = 'update_coverage'


@dataclass(frozen=True)
class RefinerConfig:
    mode: str = setting('adaptive', "'adaptive' (margins sized per zone) or 'fixed' (the "
                        'baseline: a fixed square per item).')
    base_margin: float = setting(0.1, 'Margin (m) of a new zone beyond its evidence.', lo=0.0,
                                 hi=100.0)
    growth: float = setting(2.0, 'Margin multiplier each time flaws recur at a zone.', lo=1.0,
                            hi=100.0)
    min_margin: float = setting(0.005, 'Smallest margin tried (m).', lo=0.001, hi=100.0)
    max_margin: float = setting(1.0, 'Largest margin (m).', lo=0.001, hi=100.0)
    fixed_size: float = setting(0.5, "mode 'fixed': side (m) of the square zone.", lo=0.01,
                                hi=100.0)
    reach: float = setting(0.5, 'Evidence within this (m) of a governance zone grows it.',
                           lo=0.0, hi=100.0)
    max_basin_loss: float = setting(0.0, 'Share of the golden basin that may be lost, counted '
                                    'cumulatively against the first release.', lo=0.0, hi=1.0)
    max_corrections: int = setting(128, 'Corrections per batch at most.', lo=1, hi=10_000)
    max_split_depth: int = setting(3, 'Times the evidence of a correction may be halved to keep '
                                   'the basin.', lo=0, hi=16)
    directions: int = setting(16, 'Half-planes bounding a zone (its vertices at most).', lo=4,
                              hi=256)
    zone_prefix: str = setting('fw-', 'Ids of governance-made zones start with this.')
    incident_margin: float = setting(VerifierConfig().incident_margin, "Radius (m) of an "
                                     "incident's region (the verifier's incident_margin).",
                                     lo=0.0, hi=100.0)
    judged_cases: int = setting(48, 'Flaw cases judged per correction tried (the rest at the '
                                'end).', lo=1, hi=100_000)
    coverage_min_probes: int = setting(20, 'Probes a coverage cell needs before it is raised.',
                                       lo=1, hi=10**9)
    coverage_value: float = setting(1.0, 'Coverage a thoroughly audited cell is raised to.',
                                    lo=0.0, hi=1.0)
    max_suite_incidents: int = setting(200, 'Flaw and incident cases carried in the regression '
                                       'suite at most.', lo=0, hi=MAX_CASES)

    def __post_init__(self):
        check_bounds(self)
        if self.mode not in ('adaptive', 'fixed'):
            raise ValueError(f"mode: need 'adaptive' or 'fixed', got {self.mode!r}")
        if self.min_margin > self.max_margin:
            raise ValueError(f'min_margin: must be <= max_margin ({self.max_margin}), got '
                             f'{self.min_margin}')
        if not self.zone_prefix or not re.fullmatch(r'[A-Za-z0-9_.:-]+', self.zone_prefix):
            raise ValueError(f'zone_prefix: need letters, digits, _.:-, got {self.zone_prefix!r}')


@dataclass(frozen=True)
class Correction:
    kind: CorrectionKind
    target: str                                   # zone id, limit name, or 'coverage'
    polygon: tuple[tuple[float, float], ...] = ()
    margin: float = math.nan
    value: float = math.nan                       # the new max_speed, limit or coverage
    previous: float = math.nan                    # the value it had
    cells: tuple[tuple[int, int], ...] = ()       # coverage cells (row, col) raised
    covers: tuple[str, ...] = ()                  # the flaw and incident ids it answers
    blocked: int = 0                              # of its cases judged, blocked by it
    basin_lost: tuple[str, ...] = ()              # members it would lose (a rejection)
    reason: str = ''

    def to_doc(self) -> dict:
        doc = {'kind': self.kind.value, 'target': self.target}
        if self.polygon:
            doc['polygon'] = [list(p) for p in self.polygon]
        for name in ('margin', 'value', 'previous'):
            if math.isfinite(getattr(self, name)):
                doc[name] = getattr(self, name)
        if self.cells:
            doc['cells'] = [list(c) for c in self.cells]
        doc['covers'] = len(self.covers)
        doc['covers_ids'] = list(self.covers[:20])
        doc['blocked'] = self.blocked
        if self.basin_lost:
            doc['basin_lost'] = list(self.basin_lost[:50])
        if self.reason:
            doc['reason'] = self.reason
        return doc


@dataclass(frozen=True)
class Candidate:
    """The refiner's output: an unsigned candidate release and its governance batch."""

    version: str
    parent_version: str
    spec_doc: dict
    spec: OracleSpec
    corrections: tuple[Correction, ...]
    rejected: tuple[Correction, ...]
    basin: Basin                    # accounted after this candidate (cumulative)
    suite_doc: dict                 # regression.yaml
    plan_doc: dict                  # rollout.yaml
    evidence: dict
    flaws: tuple[dict, ...] = field(default=())   # every flaw of the queue, and its fate

    @property
    def changed(self) -> bool:
        return bool(self.corrections)


def kdop(points: np.ndarray, margin: float, directions: int) -> Polygon:
    """The smallest polygon with ``directions`` evenly turning edges holding ``points`` grown by
    ``margin`` (it holds their convex hull's Minkowski sum with a disc of that radius); vertices
    rounded outwards to 0.1 mm."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    angles = 2.0 * math.pi * np.arange(directions) / directions
    normals = np.column_stack((np.cos(angles), np.sin(angles)))
    # 1e-4: outward rounding room
    support = (points @ normals.T).max(axis=0) + margin + 1e-4
    a, b = normals, np.roll(normals, -1, axis=0)
    ha, hb = support, np.roll(support, -1)
    det = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    x = (ha * b[:, 1] - hb * a[:, 1]) / det
    y = (a[:, 0] * hb - b[:, 0] * ha) / det
    vertices = np.round(np.column_stack((x, y)), 4)
    keep = np.any(vertices != np.roll(vertices, 1, axis=0), axis=1)
    polygon = Polygon(vertices[keep])
    return polygon if polygon.is_valid else polygon.convex_hull


def next_version(version: str) -> str:
    """1.2.3 -> 1.2.4; v7 -> v8; anything else gets '.1'."""
    match = re.fullmatch(r'(\d+)\.(\d+)\.(\d+)', version)
    if match:
        major, minor, patch = map(int, match.groups())
        return f'{major}.{minor}.{patch + 1}'
    match = re.fullmatch(r'(.*?)(\d+)', version)
    if match:
        return f'{match.group(1)}{int(match.group(2)) + 1}'
    return f'{version}.1'


_ACCEPTED, _FULL = 'accepted', 'full'


@dataclass
class _GovZone:
    number: int
    generation: int
    zone: Zone


class Refiner:
    def __init__(self, config: RefinerConfig | None = None):
        self.config = config if config is not None else RefinerConfig()

    def refine(self, spec_doc: dict, queue: Iterable[QueueItem], basin: Basin,
               policy: RiskPolicy, audit: dict | None = None,
               plan: RolloutPlan = DEFAULT_PLAN) -> Candidate:
        """A candidate refining ``spec_doc`` (the release the queue's flaws were found on).
        ``audit``: the red team's coverage audit (RedTeamReport.audit)."""
        work = _Batch(self.config, spec_doc, basin, policy)
        for item in queue:
            if len(work.corrections) >= self.config.max_corrections:
                break
            if item.family is Family.KEEP_OUT:
                work.correct_keep_out(item)
            elif item.family is Family.SPEED:
                work.correct_speed(item)
        if audit:
            work.correct_coverage(audit)
        return work.candidate(list(queue), plan)


class _Batch:
    """One batch of corrections on a working copy of the spec."""

    def __init__(self, config: RefinerConfig, spec_doc: dict, basin: Basin,
                 policy: RiskPolicy):
        self.c, self.policy, self.basin = config, policy, basin
        self.doc = copy.deepcopy(spec_doc)
        self.spec = parse_spec(self.doc)
        self.judge = Judge(self.spec, policy)
        self.radius = max(math.hypot(x, y) for x, y in self.spec.footprint.exterior.coords)
        self.keep_out = list(self.spec.keep_out)
        self.speed_zones = list(self.spec.speed_zones)
        self.limits = self.spec.limits
        self.cells = self.spec.coverage.cells.copy()
        pattern = re.compile(re.escape(config.zone_prefix) + r'(\d+)-g(\d+)')
        self.gov: dict[str, _GovZone] = {}
        for z in self.keep_out + self.speed_zones:
            match = pattern.fullmatch(z.zone_id)
            if match:
                self.gov[z.zone_id] = _GovZone(int(match.group(1)), int(match.group(2)), z)
        self.numbers = max((g.number for g in self.gov.values()), default=0)
        self.corrections: list[Correction] = []
        self.rejected: list[Correction] = []
        # what the working spec decides for every case judged so far
        self.actions: dict[str, Action] = {}
        self.cases: dict[str, Case] = {}
        self.boxes: dict[str, tuple] = {}
        for case in basin.cases:
            self._track(case, self.judge.action(case.proposal()))
        self.budget = math.floor(self.c.max_basin_loss * basin.size + 1e-9)
        self.member_ids = basin.ids
        self.incidents = 0
        self.replaced: dict[str, _GovZone] = {}      # a grown zone's id -> the one it replaced
        self.lost: set[str] = set()                 # lost by corrections accepted so far
        self._members = [c.id for c in basin.cases]
        self._member_tree = STRtree(shapely.box(*np.array(
            [self.boxes[i] for i in self._members]).T)) if self._members else None

    # -- bookkeeping ----------------------------------------------------------------------------

    def _track(self, case: Case, action: Action) -> None:
        self.actions[case.id] = action
        self.cases[case.id] = case
        if case.id not in self.boxes:
            poses = case.proposal().states[:, :2]
            pad = self.radius + 0.1 + self.spec.limits.clearance_horizon
            self.boxes[case.id] = (*(poses.min(axis=0) - pad), *(poses.max(axis=0) + pad))

    def _near(self, polygon: Polygon, extra: Iterable[str]) -> list[str]:
        """The basin members and ``extra`` cases whose reach may meet ``polygon``."""
        ids = []
        if self._member_tree is not None:
            ids = [self._members[i] for i in self._member_tree.query(polygon)]
        x0, y0, x1, y1 = polygon.bounds
        for i in extra:
            bx0, by0, bx1, by1 = self.boxes[i]
            if bx0 <= x1 and x0 <= bx1 and by0 <= y1 and y0 <= by1:
                ids.append(i)
        return ids

    def _mini(self, keep_out=(), speed_zones=None, limits=None) -> Judge:
        """A judge of the working spec holding only the given zone(s) (see the invariant)."""
        spec = dataclasses.replace(
            self.spec, obstacles=(), keep_out=tuple(keep_out),
            speed_zones=tuple(self.speed_zones if speed_zones is None else speed_zones),
            limits=self.limits if limits is None else limits)
        return Judge(spec, self.policy)

    def _effect(self, mini: Judge, polygon: Polygon | None, cases: list[str]):
        """(new actions of the cases it may change, basin members it loses, cases it blocks)."""
        ids = self._near(polygon, cases) if polygon is not None else (
            self._members + list(cases))
        changed, lost, blocked = {}, set(), set()
        for i in dict.fromkeys(ids):
            before = self.actions[i]
            after = max(before, mini.action(self.cases[i].proposal()))
            if after != before:
                changed[i] = after
            if i in self.member_ids and before.approves and not after.approves:
                lost.add(i)
        for i in cases:
            if max(self.actions[i], changed.get(i, self.actions[i])) >= Action.BLOCK:
                blocked.add(i)
        return changed, lost, blocked

    def _affordable(self, lost: set[str]) -> bool:
        if not lost:
            return True
        total = self.basin.lost | self.lost | lost
        return len(total) <= self.budget

    def _accept(self, correction: Correction, changed: dict, lost: set[str]) -> None:
        self.actions.update(changed)
        self.lost |= lost
        self.corrections.append(correction)

    # -- keep-out zones -------------------------------------------------------------------------

    def _evidence(self, item: QueueItem) -> tuple[np.ndarray, list[str], list[str]]:
        """(points the zone must hold, ids of the cases it should block, ids it answers)."""
        points, cases, covers = [], [], []
        for flaw in item.flaws:
            points.append((flaw.x, flaw.y))
            covers.append(flaw.case.id)
        for region in item.incidents:
            shape = region.polygon(self.c.incident_margin)
            points.extend(shape.exterior.coords)
            covers.append(region.incident_id)
            case = incident_case(region, self.incidents)
            self.incidents += 1
            self._track(case, self.judge.action(case.proposal()))
            cases.append(case.id)
        flaw_ids = [f.case.id for f in item.flaws]
        for flaw in item.flaws:
            self._track(flaw.case, flaw.action)
        step = max(1, math.ceil(len(flaw_ids) / self.c.judged_cases))
        cases += flaw_ids[::step]
        return np.array(points, dtype=np.float64), cases, covers

    def correct_keep_out(self, item: QueueItem) -> None:
        points, cases, covers = self._evidence(item)
        if len(points):
            self._zone(points, cases, covers, None)

    def _zone(self, points: np.ndarray, cases: list[str], covers: list[str],
              limit: float | None) -> None:
        """A keep-out zone (``limit`` None) or a speed-limit zone holding ``points``: the
        fixed-size square, or grown from the governance zone nearby, or new."""
        if self.c.mode == 'fixed':
            cx, cy = points.mean(axis=0)
            h = self.c.fixed_size / 2.0
            square = Polygon(np.round([(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h),
                                       (cx - h, cy + h)], 4))
            outcome = self._try_zone(None, square, math.nan, cases, covers, 0, limit)
            if outcome != _ACCEPTED:
                self._refuse(None, covers, outcome, limit, 'the fixed-size zone')
            return
        grow = self._nearest_gov(points, self.keep_out if limit is None else self.speed_zones)
        if grow is None:
            self._ladder(points, 0, cases, covers, None, 0, limit)
            return
        base = np.concatenate((points, np.asarray(grow.zone.polygon.exterior.coords)))
        if limit is not None:
            limit = min(limit, grow.zone.max_speed)
        self._ladder(base, grow.generation + 1, cases, covers, grow, 0, limit)

    def _nearest_gov(self, points: np.ndarray, zones: list[Zone]) -> _GovZone | None:
        hull = shapely.convex_hull(shapely.multipoints(points))
        best = None
        for z in zones:
            if z.zone_id in self.gov:
                d = float(shapely.distance(hull, z.polygon))
                if d <= self.c.reach and (best is None or d < best[0]):
                    best = (d, self.gov[z.zone_id])
        return best[1] if best else None

    def _margins(self, generation: int) -> list[float]:
        c = self.c
        top = min(c.max_margin, max(c.min_margin, c.base_margin * c.growth ** generation))
        ladder = [top]
        while ladder[-1] / 2.0 > c.min_margin:
            ladder.append(ladder[-1] / 2.0)
        if ladder[-1] > c.min_margin:
            ladder.append(c.min_margin)
        return ladder

    def _ladder(self, points: np.ndarray, generation: int, cases: list[str], covers: list[str],
                grow: _GovZone | None, depth: int, limit: float | None) -> None:
        """The largest margin (from the generation's down to min_margin) whose zone keeps the
        basin and blocks one of its cases; else each half of the evidence; else a rejection."""
        outcome = None
        for margin in self._margins(generation):
            polygon = kdop(points, margin, self.c.directions)
            outcome = self._try_zone(grow, polygon, margin, cases, covers, generation, limit)
            if outcome == _ACCEPTED:
                return
            if outcome == _FULL:
                break
            lost, blocked = outcome
            if not blocked and cases:
                break                   # blocks nothing it should: smaller will not either
        if outcome != _FULL and depth < self.c.max_split_depth \
                and len(np.unique(points, axis=0)) >= 2:
            for half in _halves(points):
                self._ladder(half, generation, cases, covers, None, depth + 1, limit)
            return
        self._refuse(grow, covers, outcome, limit, 'every margin and split')

    def _refuse(self, grow, covers, outcome, limit, what: str) -> None:
        speed = limit is not None
        kind = ((CorrectionKind.GROW_SPEED_ZONE if speed else CorrectionKind.GROW_KEEP_OUT)
                if grow else
                (CorrectionKind.ADD_SPEED_ZONE if speed else CorrectionKind.ADD_KEEP_OUT))
        target = grow.zone.zone_id if grow else '(new)'
        if outcome == _FULL:
            most = SPEC_LIMITS.max_speed_zones if speed else SPEC_LIMITS.max_zones
            self._reject(kind, target, covers, set(),
                         f'no room: the spec holds the most {"speed-limit " if speed else ""}'
                         f'zones SpecLimits allows ({most})')
            return
        lost, _ = outcome
        self._reject(kind, target, covers, lost,
                     f'{what} would lose golden basin members beyond max_basin_loss='
                     f'{self.c.max_basin_loss}' if lost else
                     f'{what} blocks none of its cases')

    def _try_zone(self, grow: _GovZone | None, polygon: Polygon, margin: float,
                  cases: list[str], covers: list[str], generation: int, limit: float | None):
        """_ACCEPTED, _FULL (no room for one more zone), or (basin members it loses, cases it
        blocks) when it is not accepted."""
        speed = limit is not None
        if grow is None and (len(self.speed_zones) + 1 > SPEC_LIMITS.max_speed_zones if speed
                             else len(self.spec.obstacles) + len(self.keep_out) + 1
                             > SPEC_LIMITS.max_zones):
            return _FULL
        number = grow.number if grow else self.numbers + 1
        ident = f'{self.c.zone_prefix}{number:04d}-g{generation}'
        zone = Zone(ident, polygon, limit if speed else math.inf)
        own = self.speed_zones if speed else self.keep_out
        zones = [zone if grow is not None and z is grow.zone else z for z in own] + (
            [zone] if grow is None else [])
        mini = self._mini(speed_zones=zones) if speed else self._mini(keep_out=(zone,))
        changed, lost, blocked = self._effect(mini, polygon, cases)
        if not self._affordable(lost) or (cases and not blocked):
            return lost, blocked
        if speed:
            self.speed_zones = zones
        else:
            self.keep_out = zones
        if grow is None:
            self.numbers = number
        else:
            del self.gov[grow.zone.zone_id]
            self.replaced[ident] = grow
        self.gov[ident] = _GovZone(number, generation, zone)
        kind = ((CorrectionKind.GROW_SPEED_ZONE if speed else CorrectionKind.GROW_KEEP_OUT)
                if grow else
                (CorrectionKind.ADD_SPEED_ZONE if speed else CorrectionKind.ADD_KEEP_OUT))
        self._accept(Correction(kind, ident, tuple(polygon.exterior.coords[:-1]), margin,
                                value=limit if speed else math.nan, covers=tuple(covers),
                                blocked=len(blocked),
                                reason=f'replaces {grow.zone.zone_id}' if grow else ''),
                     changed, lost)
        return _ACCEPTED

    def _reject(self, kind, target, covers, lost, reason) -> None:
        self.rejected.append(Correction(kind, target, covers=tuple(covers),
                                        basin_lost=tuple(sorted(lost)), reason=reason))

    # -- speed limits ---------------------------------------------------------------------------

    def correct_speed(self, item: QueueItem) -> None:
        flaws = [f for f in item.flaws if math.isfinite(f.verification.limit)]
        if not flaws:
            return
        for flaw in flaws:
            self._track(flaw.case, flaw.action)
        ids = [f.case.id for f in flaws]
        cases = ids[::max(1, math.ceil(len(ids) / self.c.judged_cases))]
        covers = ids
        limit = min(f.verification.limit for f in flaws)
        named = {f.verification.zone_id for f in flaws}
        if named <= set(_LIMIT_NAMES):
            self._tighten_global(flaws, cases, covers)
            return
        for z in self.speed_zones:
            if z.zone_id in named and z.max_speed > limit and z.zone_id not in self.gov:
                tightened = Zone(z.zone_id, z.polygon, limit)
                zones = [tightened if s is z else s for s in self.speed_zones]
                changed, lost, blocked = self._effect(self._mini(speed_zones=zones),
                                                      z.polygon, cases)
                if self._affordable(lost) and blocked:
                    self.speed_zones = zones
                    self._accept(Correction(CorrectionKind.TIGHTEN_LIMIT, z.zone_id,
                                            value=limit, previous=z.max_speed,
                                            covers=tuple(covers), blocked=len(blocked)),
                                 changed, lost)
                    return
        self._zone(np.array([(f.x, f.y) for f in flaws]), cases, covers, limit)

    def _tighten_global(self, flaws: list[Flaw], cases: list[str], covers: list[str]) -> None:
        name = _LIMIT_NAMES[flaws[0].verification.zone_id]
        value = min(f.verification.limit for f in flaws
                    if _LIMIT_NAMES[f.verification.zone_id] == name)
        previous = getattr(self.limits, name)
        if value >= previous:
            return
        limits = dataclasses.replace(self.limits, **{name: value})
        changed, lost, blocked = self._effect(self._mini(limits=limits), None, cases)
        if self._affordable(lost) and blocked:
            self.limits = limits
            self._accept(Correction(CorrectionKind.TIGHTEN_LIMIT, f'limits.{name}',
                                    value=value, previous=previous, covers=tuple(covers),
                                    blocked=len(blocked)), changed, lost)
        else:
            self._reject(CorrectionKind.TIGHTEN_LIMIT, f'limits.{name}', covers, lost,
                         'tightening would lose golden basin members beyond max_basin_loss')

    # -- coverage -------------------------------------------------------------------------------

    def correct_coverage(self, audit: dict) -> None:
        raised = []
        for (row, col), (probes, unsafe) in sorted(audit.items()):
            if (0 <= row < self.cells.shape[0] and 0 <= col < self.cells.shape[1]
                    and probes >= self.c.coverage_min_probes and not unsafe
                    and self.cells[row, col] < self.c.coverage_value):
                self.cells[row, col] = self.c.coverage_value
                raised.append((row, col))
        if raised:
            self.corrections.append(Correction(
                CorrectionKind.UPDATE_COVERAGE, 'coverage', value=self.c.coverage_value,
                cells=tuple(raised), reason='audited by the red team: no flaw behind an '
                'escalation'))

    # -- the candidate --------------------------------------------------------------------------

    def candidate(self, queue: list[QueueItem], plan: RolloutPlan) -> Candidate:
        flaws = [f for item in queue for f in item.flaws]
        incidents = [r for item in queue for r in item.incidents]
        while True:
            doc = self._doc()
            spec = parse_spec(doc)
            judge = Judge(spec, self.policy)
            now_allowed = allowed(self.basin.cases, judge)
            basin = self.basin.account(now_allowed)
            extra = basin.lost - self.basin.lost
            if not extra or len(basin.lost) <= self.budget:
                break
            self._drop_near(extra)      # the incremental judgement missed something: undo
        flaw_fate = []
        blocked_cases = []
        for flaw in flaws:
            action = judge.action(flaw.case.proposal())
            flaw_fate.append({'id': flaw.case.id, 'strategy': flaw.strategy.value,
                              'found_action': flaw.action.name, 'now': action.name,
                              'reason': flaw.reason.name, 'zone_id': flaw.verification.zone_id,
                              'x': round(flaw.x, 4), 'y': round(flaw.y, 4),
                              'digest': flaw.verification.digest})
            if action >= Action.BLOCK:
                blocked_cases.append(as_expected(flaw.case, Expect.BLOCKED,
                                                 f'flaw-{flaw.verification.digest[:16]}'))
        incident_blocked = []
        for k, region in enumerate(incidents):
            case = incident_case(region, k)
            if judge.action(case.proposal()) >= Action.BLOCK:
                incident_blocked.append(case)
        golden = [c for c in basin.cases if c.id in now_allowed]
        carried = _spread(incident_blocked + _unique(blocked_cases), self.c.max_suite_incidents)
        room = MAX_CASES - len(carried)
        suite = {}
        if golden[:room]:
            suite['golden'] = golden[:room]
        if carried:
            suite['incidents'] = carried
        version = spec.version
        evidence = {
            'candidate_version': version, 'parent_version': self.spec.version,
            'flaws': {'total': len(flaws), 'blocked': len(blocked_cases),
                      'open': [f['id'] for f in flaw_fate if f['now'] not in
                               ('BLOCK', 'FALLBACK')][:50]},
            'incidents': {'total': len(incidents), 'blocked': len(incident_blocked)},
            'basin': {'first_version': basin.first_version, 'size': basin.size,
                      'kept': basin.kept, 'lost_total': len(basin.lost),
                      'lost_this_batch': sorted(basin.lost - self.basin.lost),
                      'budget': self.budget},
            'corrections': {'accepted': len(self.corrections), 'rejected': len(self.rejected),
                            'by_kind': _kinds(self.corrections)},
            'regression': {'golden': len(suite.get('golden', ())),
                           'incidents': len(suite.get('incidents', ())),
                           'golden_left_out': max(0, len(golden) - room)},
            'queue': [item.to_doc() for item in queue[:20]],
            'open_work': [m.work.to_doc() for item in queue for m in item.members
                          if m.work is not None][:50],
        }
        return Candidate(version, self.spec.version, doc, spec, tuple(self.corrections),
                         tuple(self.rejected), basin,
                         suite_doc(suite.get('golden', ()), suite.get('incidents', ())),
                         plan.to_doc(), evidence, tuple(flaw_fate))

    def _doc(self) -> dict:
        doc = copy.deepcopy(self.doc)
        doc['version'] = next_version(self.spec.version) if self.corrections else \
            self.spec.version
        doc['keep_out'] = [_zone_doc(z) for z in self.keep_out]
        speed = [_zone_doc(z) for z in self.speed_zones]
        if speed or 'speed_zones' in doc:
            doc['speed_zones'] = speed
        if self.limits != self.spec.limits:
            doc['limits'] = {**doc['limits'], **{
                k: getattr(self.limits, k) for k in _LIMIT_NAMES.values()}}
        if not np.array_equal(self.cells, self.spec.coverage.cells):
            doc['coverage'] = {**doc['coverage'],
                               'cells': [[_num(v) for v in row] for row in self.cells.tolist()]}
        return doc

    def _drop_near(self, lost: set[str]) -> None:
        """Withdraw every zone correction whose zone comes near a member found lost (every
        correction but coverage when none does), latest first."""
        boxes = [shapely.box(*self.boxes[i]) for i in lost]
        near = [c for c in self.corrections
                if c.polygon and any(shapely.intersects(Polygon(c.polygon), b) for b in boxes)]
        if not near:
            near = [c for c in self.corrections if c.kind is not CorrectionKind.UPDATE_COVERAGE]
        for c in reversed(near):
            self._undo(c)
            self.rejected.append(dataclasses.replace(
                c, basin_lost=tuple(sorted(lost)),
                reason='withdrawn: the whole candidate loses golden basin members near it'))
        self.corrections = [c for c in self.corrections if c not in near]

    def _undo(self, c: Correction) -> None:
        old = self.replaced.pop(c.target, None)
        for zones in (self.keep_out, self.speed_zones):
            for k, z in enumerate(zones):
                if z.zone_id == c.target:
                    if c.kind is CorrectionKind.TIGHTEN_LIMIT:
                        zones[k] = Zone(z.zone_id, z.polygon, c.previous)
                    elif old is not None:
                        zones[k] = old.zone
                    else:
                        del zones[k]
                    break
        if c.kind is CorrectionKind.TIGHTEN_LIMIT and c.target.startswith('limits.'):
            self.limits = dataclasses.replace(self.limits, **{c.target[7:]: c.previous})
        self.gov.pop(c.target, None)
        if old is not None:
            self.gov[old.zone.zone_id] = old


def incident_case(region: IncidentRegion, index: int = 0) -> Case:
    """A proposal setting off from where an incident happened: blocked once its region is."""
    return held(f'incident-case-{index:04d}', (region.x, region.y, 0.0), (0.2, 0.0), 10, 0.1,
                Expect.BLOCKED)


def _halves(points: np.ndarray) -> list[np.ndarray]:
    """Points split at the median of their longest axis (principal component)."""
    centred = points - points.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    t = centred @ axis
    order = np.argsort(t, kind='stable')
    k = len(points) // 2
    return [points[order[:k]], points[order[k:]]]


def _spread(cases: list[Case], most: int) -> list[Case]:
    """At most ``most`` cases, evenly spread over the list."""
    if len(cases) <= most:
        return cases
    step = len(cases) / most
    return [cases[int(i * step)] for i in range(most)]


def _unique(cases: list[Case]) -> list[Case]:
    seen, out = set(), []
    for c in cases:
        if c.id not in seen:
            seen.add(c.id)
            out.append(c)
    return out


def _kinds(corrections: list[Correction]) -> dict:
    out: dict[str, int] = {}
    for c in corrections:
        out[c.kind.value] = out.get(c.kind.value, 0) + 1
    return out


def _zone_doc(zone: Zone) -> dict:
    doc = {'id': zone.zone_id,
           'polygon': [[_num(x), _num(y)] for x, y in zone.polygon.exterior.coords[:-1]]}
    if math.isfinite(zone.max_speed):
        doc['max_speed'] = _num(zone.max_speed)
    return doc


def _num(value: float):
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
