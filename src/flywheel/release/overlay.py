"""The coverage overlay: where the verifier has verified proposals safe, as governance keeps it
and the Oracle applies it (msg/CoverageOverlay).

Why this design (the trust path): a verified case lowers escalation (coverage uncertainty c_a) for
every later proposal in the same place, so it changes what the Oracle says, and only governance
may change that. The verifier signs its answer with a key of its own role; the Gate embeds the
answer it received, signature and all, in its VERIFICATION record; governance takes the answer
from that record and believes nothing but the verifier's signature (the Gate is not trusted to
vouch for it, and a forged Gate record gains nothing). Governance then makes the next overlay:
numbered (never reused, persisted with the answers already counted), bound to the release the
verifier checked against, recorded as a governance event in the ledger, and sent to the Oracle
signed by a governance key, as a directive is. The Oracle applies an overlay only when it is
signed so, numbered above the one it applies now, and for the release it runs; it applies it to
that release's coverage grid and the candidate's beside it, never to the spec itself, so the
release stays what its operators signed and the refiner can fold the overlay into the next one.

Invariants, each tested:
- An answer raises the overlay only if it is safe, well formed, signed by a verifier key of the
  trust root, numbered after every answer counted from that verifier key on that robot, checked
  against the active release, and its region is no wider than ``max_extent``.
- The overlay only ever raises coverage (cells touched by a region count at least ``coverage``):
  it can stop an escalation, never start or stop a BLOCK; every other signal is the release's.
- A region is widened by what the Oracle itself adds around a motion when it scores it
  (``scoring_margin``), so the very situation verified stops escalating; cells are whole, as
  the grid's coverage always is.
- At most MAX_REGIONS regions; a full overlay refuses more (the refiner folds it into a release).
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field, replace

import numpy as np

from flywheel.auth import GOVERNANCE, VERIFIER, Keyring
from flywheel.oracle.spec import CoverageGrid, OracleSpec
from flywheel.verifier_answer import VerifierAnswer, answer_problem

MAX_REGIONS = 1024                 # msg/CoverageOverlay.msg: float64[<=4096] regions
MAX_TEXT = 64
# The Oracle's proposal limits (flywheel.proposal.ProposalLimits defaults): how far a pose may lie
# from where the twist before it leads; the Oracle widens every segment by this.
KINEMATIC_TOLERANCE = 0.02
KINEMATIC_YAW_TOLERANCE = 0.02
_MAGIC = b'flywheel.coverage_overlay.v1\0'

Region = tuple[float, float, float, float]


@dataclass(frozen=True)
class CoverageOverlay:
    """See msg/CoverageOverlay.msg. ``version`` is what SafetySignals.overlay_version names."""

    number: int
    oracle_version: str
    release_number: int
    coverage: float
    regions: tuple[Region, ...]
    epoch: int = 0
    seq: int = 0
    key_id: str = ''
    signature: bytes = b''

    @property
    def version(self) -> str:
        return str(self.number)

    def canonical_bytes(self) -> bytes:
        version, oracle = self.version.encode(), self.oracle_version.encode('utf-8')
        flat = [v for region in self.regions for v in region]
        return b''.join([_MAGIC, struct.pack('<QQQQd', self.epoch, self.seq, self.number,
                                             self.release_number, self.coverage),
                         struct.pack('<I', len(version)), version,
                         struct.pack('<I', len(oracle)), oracle,
                         struct.pack(f'<I{len(flat)}d', len(flat), *flat)])


def overlay_problem(o: CoverageOverlay) -> str | None:
    """Why this overlay is not one governance sends (None when it could be)."""
    if not 1 <= o.number < 2**63 or not 1 <= o.release_number < 2**63:
        return f'number {o.number} / release {o.release_number}: need 1..2^63-1'
    if not o.oracle_version or len(o.oracle_version) > MAX_TEXT:
        return f'oracle_version {o.oracle_version[:80]!r}: need 1..{MAX_TEXT} characters'
    if not (math.isfinite(o.coverage) and 0.0 < o.coverage <= 1.0):
        return f'coverage {o.coverage}: need (0, 1]'
    if len(o.regions) > MAX_REGIONS:
        return f'{len(o.regions)} regions > {MAX_REGIONS}'
    for region in o.regions:
        if len(region) != 4 or not all(math.isfinite(v) for v in region) \
                or region[0] > region[2] or region[1] > region[3]:
            return f'region {region!r}: need finite xmin <= xmax, ymin <= ymax'
    return None


def check_overlay(o: CoverageOverlay, keyring: Keyring | None, applied: int) -> str | None:
    """Why the Oracle must not apply ``o`` (None when it may): its form, a governance signature
    (with authentication on), and a number above the overlay ``applied`` now (0: none)."""
    problem = overlay_problem(o)
    if problem is not None:
        return problem
    if keyring is not None:
        problem = keyring.check(GOVERNANCE, o.key_id, o.signature, o.canonical_bytes())
        if problem is not None:
            return problem
    if o.number <= applied:
        return f'overlay {o.number} is not newer than the one applied ({applied}): stale'
    return None


def apply_overlay(grid: CoverageGrid, o: CoverageOverlay) -> CoverageGrid:
    """``grid`` with every cell a region's box touches raised to at least ``o.coverage`` (the
    cells the Oracle would look up for that box: flywheel/oracle/oracle.py's _CoverageIndex)."""
    cells = grid.cells.copy()
    rows, cols = cells.shape
    for xmin, ymin, xmax, ymax in o.regions:
        c0, r0, c1, r1 = (math.floor((v - origin) / grid.resolution) for v, origin in (
            (xmin, grid.origin[0]), (ymin, grid.origin[1]), (xmax, grid.origin[0]),
            (ymax, grid.origin[1])))
        c0, c1 = max(c0, 0), min(c1, cols - 1)
        r0, r1 = max(r0, 0), min(r1, rows - 1)
        if c0 <= c1 and r0 <= r1:
            np.maximum(cells[r0:r1 + 1, c0:c1 + 1], o.coverage,
                       out=cells[r0:r1 + 1, c0:c1 + 1])
    return replace(grid, cells=cells)


def scoring_margin(spec: OracleSpec) -> float:
    """How far beyond the footprints of a motion the Oracle's swept region can reach (the
    anchor tolerances over the hold at the spec's top speed, the sweep's chord bound, the
    kinematic tolerances): a region widened by it holds every box the Oracle scores for it."""
    radius = max(math.hypot(x, y) for x, y in spec.footprint.exterior.coords)
    return (spec.anchor_tolerance + spec.anchor_yaw_tolerance
            * (radius + spec.limits.max_speed * spec.command_hold)
            + spec.sweep_tolerance + KINEMATIC_TOLERANCE + KINEMATIC_YAW_TOLERANCE * radius)


@dataclass(frozen=True)
class Admitted:
    """What one answer did: a new overlay, or why not (``overlay`` None)."""

    overlay: CoverageOverlay | None
    why: str


@dataclass
class OverlayBook:
    """Governance's overlay and the answers it has counted (persisted as JSON)."""

    coverage: float = 1.0
    max_extent: float = 10.0
    overlay: CoverageOverlay | None = None
    last_number: int = 0
    floors: dict[str, tuple[int, int]] = field(default_factory=dict)   # robot|key -> (e, s)

    def admit(self, answer: VerifierAnswer, robot: str, keyring: Keyring | None,
              active_version: str, active_number: int, spec: OracleSpec) -> Admitted:
        """Count a verifier's answer (from ``robot``'s Gate record) toward the overlay of the
        active release."""
        problem = answer_problem(answer)
        if problem is not None:
            return Admitted(None, f'malformed answer: {problem}')
        if not answer.safe:
            return Admitted(None, 'not a safe answer')
        if keyring is not None:
            problem = keyring.check(VERIFIER, answer.key_id, answer.signature,
                                    answer.canonical_bytes())
            if problem is not None:
                return Admitted(None, f'answer not believed: {problem}')
        floor_key = f'{robot}|{answer.key_id}'
        floor = self.floors.get(floor_key)
        if floor is not None and (answer.epoch, answer.seq) <= tuple(floor):
            return Admitted(None, f'answer ({answer.epoch}, {answer.seq}) after {tuple(floor)}: '
                            'replayed')
        if answer.oracle_version != active_version:
            return Admitted(None, f'verified against {answer.oracle_version!r}, the active '
                            f'release is {active_version!r}')
        xmin, ymin, xmax, ymax = answer.region
        if max(xmax - xmin, ymax - ymin) > self.max_extent:
            return Admitted(None, f'region {answer.region} wider than {self.max_extent} m')
        self.floors[floor_key] = (answer.epoch, answer.seq)
        m = scoring_margin(spec)
        region = (xmin - m, ymin - m, xmax + m, ymax + m)
        current = self.overlay
        regions = (current.regions if current is not None and (
            current.oracle_version, current.release_number) == (active_version, active_number)
            else ())
        if any(r[0] <= region[0] and r[1] <= region[1] and r[2] >= region[2]
               and r[3] >= region[3] for r in regions):
            return Admitted(None, 'already covered')
        if len(regions) >= MAX_REGIONS:
            return Admitted(None, f'the overlay holds {MAX_REGIONS} regions already: a release '
                            'must fold it in')
        self.last_number += 1
        self.overlay = CoverageOverlay(self.last_number, active_version, active_number,
                                       self.coverage, regions + (region,))
        return Admitted(self.overlay, 'region ({:.2f}, {:.2f})-({:.2f}, {:.2f}) verified safe'
                        .format(*region))

    def for_release(self, version: str, number: int) -> CoverageOverlay | None:
        """The overlay that applies to this release (None if there is none yet)."""
        o = self.overlay
        return o if o is not None and (o.oracle_version, o.release_number) == (version,
                                                                                 number) else None

    def to_json(self) -> bytes:
        o = self.overlay
        return json.dumps({
            'last_number': self.last_number,
            'floors': {k: list(v) for k, v in sorted(self.floors.items())},
            'overlay': None if o is None else {
                'number': o.number, 'oracle_version': o.oracle_version,
                'release_number': o.release_number, 'coverage': o.coverage,
                'regions': [list(r) for r in o.regions]}}, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes, coverage: float, max_extent: float) -> 'OverlayBook':
        """ValueError if the file is not one ``to_json`` wrote."""
        try:
            doc = json.loads(raw)
            book = cls(coverage, max_extent, None, int(doc['last_number']),
                       {str(k): (int(v[0]), int(v[1])) for k, v in doc['floors'].items()})
            o = doc['overlay']
            if o is not None:
                book.overlay = CoverageOverlay(
                    int(o['number']), str(o['oracle_version']), int(o['release_number']),
                    float(o['coverage']), tuple(tuple(float(v) for v in r)
                                                for r in o['regions']))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f'not an overlay file ({exc})') from exc
        if book.overlay is not None:
            problem = overlay_problem(book.overlay)
            if problem is not None or book.overlay.number > book.last_number:
                raise ValueError(f'not an overlay file ({problem or "number above last"})')
        return book
