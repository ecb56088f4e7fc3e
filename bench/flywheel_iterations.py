"""The flywheel, iterated: red team -> triage -> refiner -> next spec, on a seeded world with many
planted flaws (hazards the first spec lacks), until the red team finds nothing.

The world: a 30 x 20 m floor with shelving rows, keep-out and speed zones the first Oracle spec
knows, and --hazards obstacles (boxes, long thin spills, L-shapes) plus --speed-hazards slippery
patches (a lower safe speed) that it does not. The verifier knows the true world (the planted
hazards as obstacles beyond the spec, the patches as speed-limit zones); the red team and the
refiner do not: they see only the verifier's answers about the probes they make.

Per iteration: the red team's probes and the flaws it finds (Gate approvals the verifier finds
unsafe); the corrections accepted and rejected; the zones the spec then holds; the flaws left in
a fixed audit set (probes aimed at every planted hazard and patch from all sides, plus probes
over the whole floor, drawn once with their own seed and verified once), i.e. what the next
release still gets wrong, and how many planted hazards still have one; and the golden basin
(--basin proposals of normal operation the first release allows) kept, counted cumulatively
against the first release. Every candidate is bundled with flywheel.release and its regression
suite run (flywheel.agents.candidate) before the next iteration starts from it.

The baseline is the same loop with fixed-size corrections (RefinerConfig(mode='fixed'): a square
of --fixed-size m per region of flaws, never grown).

    scripts/run.sh python bench/flywheel_iterations.py [--seed 7] [--hazards 40] [--quick]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from shapely.geometry import Polygon, box
from shapely.ops import unary_union
from shapely import affinity

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command_line, load, machine  # noqa: E402

from flywheel.agents.basin import sample_basin  # noqa: E402
from flywheel.agents.candidate import candidate_files  # noqa: E402
from flywheel.agents.cases import held  # noqa: E402
from flywheel.agents.judge import Judge  # noqa: E402
from flywheel.agents.red_team import UNSAFE, RedTeam, RedTeamConfig  # noqa: E402
from flywheel.agents.refiner import Refiner, RefinerConfig  # noqa: E402
from flywheel.agents.triage import triage  # noqa: E402
from flywheel.enforcement.policy import load_policy  # noqa: E402
from flywheel.oracle.spec import Zone, parse_spec  # noqa: E402
from flywheel.verify.verifier import Knowledge, Verifier, VerifierConfig  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / 'config'
W, H = 30.0, 20.0
FOOTPRINT = [[-0.25, -0.2], [0.3, -0.2], [0.3, 0.2], [-0.25, 0.2]]
ROBOT_RADIUS = math.hypot(0.3, 0.2)


def never() -> int:
    return 0


def _ring(polygon: Polygon) -> list[list[float]]:
    return [[round(x, 4), round(y, 4)] for x, y in polygon.exterior.coords[:-1]]


def first_spec() -> dict:
    """What the first release knows: shelving rows, two charging bays, two crosswalks."""
    shelves = [box(x, y, x + 6.0, y + 1.0) for y in (4.0, 9.5, 15.0) for x in (3.0, 12.0, 21.0)]
    pillars = [box(x, 0.0, x + 0.4, 0.4) for x in (7.5, 16.5, 25.5)]
    doc = yaml.safe_load((CONFIG / 'oracle_spec.yaml').read_text())
    fence = [[0.0, 0.0], [W, 0.0], [W, H], [0.0, H]]
    doc.update({
        'version': '1.0.0', 'footprint': FOOTPRINT,
        'obstacles': [{'id': f'shelf_{i}', 'polygon': _ring(p)} for i, p in enumerate(shelves)]
        + [{'id': f'pillar_{i}', 'polygon': _ring(p)} for i, p in enumerate(pillars)],
        'keep_out': [{'id': 'charging_bay_a', 'polygon': _ring(box(0.0, 18.0, 3.0, 20.0))},
                     {'id': 'charging_bay_b', 'polygon': _ring(box(27.0, 18.0, 30.0, 20.0))}],
        'speed_zones': [{'id': 'crosswalk_a', 'max_speed': 0.3,
                         'polygon': _ring(box(10.0, 6.5, 11.5, 8.5))},
                        {'id': 'crosswalk_b', 'max_speed': 0.3,
                         'polygon': _ring(box(19.0, 12.0, 20.5, 14.0))}],
        'geofence': fence,
    })
    doc['uncertainty'] = {**doc['uncertainty'], 'validated_region': fence}
    doc['coverage'] = {'origin': [0.0, 0.0], 'resolution': 2.0, 'threshold': 0.5,
                       'cells': [[1.0] * 15 for _ in range(10)]}
    return doc


def planted(rng, spec, hazards: int, patches: int) -> tuple[list[Zone], list[Zone]]:
    """Hazards in free floor, at least 0.6 m from what the spec knows and from each other, and
    slippery patches (speed limits 0.2..0.4 m/s)."""
    known = unary_union([z.polygon for z in spec.obstacles + spec.keep_out])
    fence = spec.geofence.buffer(-0.6)
    out: list[Zone] = []
    while len(out) < hazards:
        x, y = rng.uniform(0.5, W - 0.5), rng.uniform(0.5, H - 0.5)
        kind = rng.choice(['box', 'spill', 'L'])
        if kind == 'box':
            shape = box(x, y, x + rng.uniform(0.2, 0.9), y + rng.uniform(0.2, 0.9))
        elif kind == 'spill':
            shape = box(x, y, x + rng.uniform(0.8, 1.8), y + rng.uniform(0.08, 0.2))
        else:
            arm = rng.uniform(0.8, 1.4)
            shape = unary_union([box(x, y, x + arm, y + 0.3), box(x, y, x + 0.3, y + arm)])
        shape = affinity.rotate(shape, rng.uniform(0, 180), origin='centroid')
        if not fence.contains(shape) or shape.distance(known) < 0.6 or any(
                shape.distance(z.polygon) < 0.6 for z in out):
            continue
        coords = [(round(a, 4), round(b, 4)) for a, b in shape.exterior.coords[:-1]]
        out.append(Zone(f'hazard_{len(out)}', Polygon(coords)))
    slow = []
    while len(slow) < patches:
        x, y = rng.uniform(1.0, W - 4.0), rng.uniform(1.0, H - 4.0)
        side = rng.uniform(1.5, 3.0)
        shape = box(x, y, x + side, y + side)
        if shape.intersects(known) or any(shape.intersects(z.polygon) for z in slow):
            continue
        slow.append(Zone(f'slippery_{len(slow)}', shape, round(rng.uniform(0.2, 0.4), 2)))
    return out, slow


def audit_set(rng, spec, verifier, hazards, patches, uniform: int, around: int):
    """The fixed measure: probes over the floor and aimed at every hazard and patch; the ones
    the verifier finds unsafe (only they can be flaws), each with what it hits."""
    cases = []
    for _ in range(uniform):
        v = rng.uniform(0.15, 0.999)
        cases.append(held(f'u{len(cases)}', (rng.uniform(0, W), rng.uniform(0, H),
                                             rng.uniform(-math.pi, math.pi)),
                          (v, rng.normal(0.0, 0.3) * v), 15, 0.1))
    for zone in list(hazards) + list(patches):
        centre = zone.polygon.centroid
        reach = math.sqrt(zone.polygon.area) / 2 + ROBOT_RADIUS
        for _ in range(around):
            bearing = rng.uniform(-math.pi, math.pi)
            d = reach + rng.uniform(0.05, 1.2)
            x, y = centre.x + d * math.cos(bearing), centre.y + d * math.sin(bearing)
            v = rng.uniform(0.15, 0.999)
            cases.append(held(f'a{len(cases)}', (x, y, bearing + math.pi + rng.uniform(-0.6, 0.6)),
                              (v, rng.normal(0.0, 0.15)), 15, 0.1))
    unsafe = []
    for case in cases:
        check = verifier.check(case.proposal(), spec.command_hold, never)
        if check.reason in UNSAFE:
            unsafe.append((case, check.zone_id))
    return len(cases), unsafe


def remaining(unsafe, judge: Judge, planted_ids: set[str]) -> tuple[int, int]:
    """(audit flaws the release approves, planted hazards and patches with at least one)."""
    left = [(c, z) for c, z in unsafe if judge.action(c.proposal()).approves]
    return len(left), len({z for _, z in left} & planted_ids)


def run(label: str, refiner: Refiner, doc0: dict, policy, verifier, basin0, unsafe, planted_ids,
        red_config: RedTeamConfig, seed: int, max_iterations: int) -> list[dict]:
    rows = []
    doc, basin = doc0, basin0
    rng = np.random.default_rng(seed)
    spec = parse_spec(doc)
    left, hazards_left = remaining(unsafe, Judge(spec, policy), planted_ids)
    rows.append({'iteration': 0, 'version': spec.version, 'probes': 0, 'found': '',
                 'accepted': '', 'rejected': '', 'zones': len(spec.keep_out),
                 'speed_zones': len(spec.speed_zones), 'left': left,
                 'hazards_left': hazards_left, 'kept': basin.kept, 'seconds': 0.0})
    _progress(label, rows[-1])
    for iteration in range(1, max_iterations + 1):
        started = time.perf_counter()
        report = RedTeam(red_config).attack(spec, policy, verifier, rng, never)
        queue = triage(flaws=report.flaws, near=[c.start[:2] for c in basin.cases])
        candidate = refiner.refine(doc, queue, basin, policy, report.audit)
        if candidate.changed:
            candidate_files(candidate, policy)          # a release whose suite passes, or raise
            doc, basin, spec = candidate.spec_doc, candidate.basin, candidate.spec
        left, hazards_left = remaining(unsafe, Judge(spec, policy), planted_ids)
        rows.append({'iteration': iteration, 'version': spec.version, 'probes': report.probes,
                     'found': len(report.flaws), 'accepted': len(candidate.corrections),
                     'rejected': len(candidate.rejected), 'zones': len(spec.keep_out),
                     'speed_zones': len(spec.speed_zones), 'left': left,
                     'hazards_left': hazards_left, 'kept': basin.kept,
                     'seconds': time.perf_counter() - started})
        _progress(label, rows[-1])
        if not report.flaws:
            break
    return rows


def _progress(label: str, row: dict) -> None:
    print(f'  [{label}] {row}', file=sys.stderr, flush=True)


def table(rows: list[dict], basin_size: int) -> str:
    out = ['| iteration | release | probes | flaws found | corrections (rejected) | keep-out / '
           'speed zones | audit flaws left | hazards left | basin kept | s |',
           '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        fix = f'{r["accepted"]} ({r["rejected"]})' if r['accepted'] != '' else ''
        out.append(f'| {r["iteration"]} | {r["version"]} | {r["probes"] or ""} | {r["found"]} | '
                   f'{fix} | {r["zones"]} / {r["speed_zones"]} | {r["left"]} | '
                   f'{r["hazards_left"]} | {r["kept"]} / {basin_size} | {r["seconds"]:.1f} |')
    return '\n'.join(out)


def summary(label: str, rows: list[dict], basin_size: int) -> str:
    last = rows[-1]
    zero = next((r['iteration'] for r in rows[1:] if r['found'] == 0), None)
    clean = next((r['iteration'] for r in rows if r['left'] == 0), None)
    total = sum(r['found'] or 0 for r in rows[1:])
    return (f'{label}: {total} flaws found in all; red team found none at iteration '
            f'{zero if zero is not None else "- (not within the iterations run)"}; audit flaws '
            f'{rows[0]["left"]} -> {last["left"]} (zero from iteration '
            f'{clean if clean is not None else "-"}); basin kept {last["kept"]} / {basin_size} '
            f'(cumulative against {rows[0]["version"]})')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=7)
    parser.add_argument('--hazards', type=int, default=40)
    parser.add_argument('--speed-hazards', type=int, default=6)
    parser.add_argument('--basin', type=int, default=800)
    parser.add_argument('--iterations', type=int, default=20)
    parser.add_argument('--baseline-iterations', type=int, default=25)
    parser.add_argument('--fixed-size', type=float, default=0.5)
    parser.add_argument('--no-baseline', action='store_true')
    parser.add_argument('--quick', action='store_true',
                        help='a smaller run: 15 hazards, 2 patches, 300 basin, smaller budgets')
    args = parser.parse_args(argv)
    if args.quick:
        args.hazards, args.speed_hazards, args.basin = 15, 2, 300
        args.iterations, args.baseline_iterations = 12, 12
    red = RedTeamConfig(explore=2000, near_zone=800, corner_cut=300, overspeed=300, incident=0,
                        refine=2500)
    if args.quick:
        red = RedTeamConfig(explore=1000, near_zone=400, corner_cut=150, overspeed=150,
                            incident=0, refine=1200)
    start_load = load()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    doc0 = first_spec()
    spec0 = parse_spec(doc0)
    policy = load_policy(CONFIG / 'policy.yaml')
    hazards, patches = planted(rng, spec0, args.hazards, args.speed_hazards)
    verifier = Verifier(Knowledge.of(spec0, hazards=hazards, speed_hazards=patches),
                        VerifierConfig(deadline_s=10.0))
    basin = sample_basin(spec0, policy, verifier, np.random.default_rng(args.seed + 1),
                         args.basin, never)
    audited, unsafe = audit_set(np.random.default_rng(args.seed + 2), spec0, verifier, hazards,
                                patches, uniform=4000 if not args.quick else 1500, around=40)
    planted_ids = {z.zone_id for z in hazards + patches}
    print(f'machine: {machine()}')
    print(f'command: {command_line()}')
    print(f'world: {W:g} x {H:g} m, seed {args.seed}; the first spec knows '
          f'{len(spec0.obstacles)} obstacles, {len(spec0.keep_out)} keep-out and '
          f'{len(spec0.speed_zones)} speed zones; planted: {len(hazards)} hazards, '
          f'{len(patches)} slippery patches; golden basin {basin.size} proposals; audit set '
          f'{audited} probes of which {len(unsafe)} unsafe by the verifier; red team per '
          f'iteration: {red.explore} anywhere, {red.near_zone} near zones, {red.corner_cut} '
          f'corner cuts, {red.overspeed} overspeed, up to {red.refine} around flaws; load average '
          f'{start_load} at the start\n')
    adaptive = run('adaptive', Refiner(), doc0, policy, verifier, basin, unsafe, planted_ids,
                   red, args.seed + 3, args.iterations)
    print('adaptive margins (the refiner as shipped):\n')
    print(table(adaptive, basin.size))
    print('\n' + summary('adaptive', adaptive, basin.size))
    if not args.no_baseline:
        fixed = run('fixed', Refiner(RefinerConfig(mode='fixed', fixed_size=args.fixed_size)),
                    doc0, policy, verifier, basin, unsafe, planted_ids, red, args.seed + 3,
                    args.baseline_iterations)
        print(f'\nbaseline: fixed-size corrections ({args.fixed_size:g} m squares):\n')
        print(table(fixed, basin.size))
        print('\n' + summary('fixed-size', fixed, basin.size))
    print(f'\n{time.perf_counter() - started:.0f} s in all; load average {load()} at the end')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
