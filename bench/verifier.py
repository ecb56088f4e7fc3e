"""Verifier cost: one check of one escalated proposal, wall time from the verifier's own clock.

Target (issue 12): p99 <= 50 ms (the verifier's default deadline). Cases:

- warehouse: the shipped spec, the stray pallet it lacks as a known hazard and 20 incident
  regions; proposals from free starts wandering at up to 0.8 m/s: 20 points 0.1 s apart (what
  the built-in route planner proposes) and 50 points (5 s).
- worst inside the limits: 1,000 obstacles (SpecLimits allows 1,024), 64 speed zones and 200
  incident regions over 100 x 100 m; 200-point proposals (the Oracle's max_points, 10 s at
  0.05 s) at up to the speed and yaw-rate limits, so each check samples the most placements.

Each check runs to its end (the deadline is raised so that none is cut short) and is timed with
the clock the verifier reads; safe answers (every placement checked) are also shown alone.

    scripts/run.sh python bench/verifier.py [--samples 2000]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from shapely.geometry import Polygon, box

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HEADER, load, machine, row, stats_ms  # noqa: E402

from flywheel.kinematics import rollout  # noqa: E402
from flywheel.oracle.spec import Zone, load_spec, parse_spec  # noqa: E402
from flywheel.proposal import make_proposal  # noqa: E402
from flywheel.verify.verifier import Knowledge, Verifier, VerifierConfig  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / 'config'
SIZE = 100.0


def incidents(count: int, rng, lo, hi) -> list[dict]:
    xy = rng.uniform(lo, hi, size=(count, 2))
    return [{'incident_id': f'i{i}', 'severity': ('COLLISION', 'NEAR_MISS')[i % 2],
             'x': float(x), 'y': float(y), 'distance': 0.05} for i, (x, y) in enumerate(xy)]


def warehouse(rng) -> Knowledge:
    spec = load_spec(CONFIG / 'oracle_spec.yaml')
    pallet = Zone('stray_pallet', Polygon([(11.2, 7.3), (11.9, 7.3), (11.9, 7.9), (11.2, 7.9)]))
    return Knowledge.of(spec, incidents(20, rng, (1.0, 1.0), (11.0, 7.0)), hazards=[pallet])


def worst(rng) -> Knowledge:
    doc = yaml.safe_load((CONFIG / 'oracle_spec.yaml').read_text())
    corners = []
    for x, y in rng.uniform(0, SIZE, size=(1000, 2)):
        w, h = rng.uniform(0.2, 0.8, 2)
        corners.append([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    doc['obstacles'] = [{'id': f'box_{i}', 'polygon': c} for i, c in enumerate(corners)]
    doc['keep_out'] = []
    doc['speed_zones'] = [
        {'id': f'slow_{i}', 'max_speed': 0.9,
         'polygon': [list(p) for p in box(x, y, x + 4, y + 4).exterior.coords[:-1]]}
        for i, (x, y) in enumerate(rng.uniform(0, SIZE - 4, size=(64, 2)))]
    square = [[0, 0], [SIZE, 0], [SIZE, SIZE], [0, SIZE]]
    doc['geofence'] = square
    doc['uncertainty']['validated_region'] = square
    doc['coverage']['resolution'] = SIZE / 12
    return Knowledge.of(parse_spec(doc), incidents(200, rng, (5.0, 5.0), (95.0, 95.0)))


def proposals(verifier: Verifier, count: int, rng, lo: float, hi: float, points: int, dt: float,
              v_max: float, w_max: float) -> list:
    """Kinematically consistent trajectories with speed and turn rate wandering within limits
    (acceleration at most 2 m/s^2), each from a start where the robot standing still is safe."""
    out = []
    t_ns = np.round(np.arange(points) * dt * 1e9).astype(np.int64)
    while len(out) < count:
        i = len(out)
        x, y = rng.uniform(lo, hi, 2)
        still = make_proposal('still', 'proposer', 0, 'map', 0, [0, 500_000_000],
                              [[x, y, 0.0, 0.0, 0.0]] * 2, (0.0, 0.0))
        if not verifier.check(still, 0.4, time.monotonic_ns).safe:
            continue
        dv = np.clip(rng.normal(0.0, 0.02, points), -1.9 * dt, 1.9 * dt)
        v = np.clip(rng.uniform(0.3, v_max) + np.cumsum(dv), 0.0, v_max)
        w = np.clip(rng.uniform(-w_max, w_max) + np.cumsum(rng.normal(0.0, 0.05, points)),
                    -w_max, w_max)
        w = np.where(v > 0.05, np.clip(w, -5.9 * v, 5.9 * v), w)   # curvature within 6 /m
        states = rollout(x, y, rng.uniform(-np.pi, np.pi), np.column_stack([v, w]),
                         np.full(points - 1, dt))
        out.append(make_proposal(f'proposer/{i}', 'proposer', i, 'map', 0, t_ns, states,
                                 (v[0], w[0])))
    return out


def measure(verifier: Verifier, batch: list, hold: float):
    """(elapsed s of every check, of the safe ones, reasons)."""
    every, safe, reasons = [], [], {}
    for p in batch:
        p = copy.copy(p)
        p.__dict__.pop('digest', None)          # digested afresh, as a request would be
        r = verifier.check(p, hold, time.monotonic_ns)
        every.append(r.elapsed_ns * 1e-9)
        if r.safe:
            safe.append(r.elapsed_ns * 1e-9)
        reasons[r.reason.name] = reasons.get(r.reason.name, 0) + 1
    return every, safe, reasons


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=2000)
    args = parser.parse_args(argv)
    start_load = load()
    rng = np.random.default_rng(11)
    config = VerifierConfig(deadline_s=60.0)
    small, big = Verifier(warehouse(rng), config), Verifier(worst(rng), config)
    cases = [
        ('warehouse, 20 points', small,
         proposals(small, args.samples, rng, 0.5, 11.5, 20, 0.1, 0.8, 0.8)),
        ('warehouse, 50 points', small,
         proposals(small, args.samples, rng, 0.5, 11.5, 50, 0.1, 0.8, 0.8)),
        ('worst inside the limits, 200 points', big,
         proposals(big, args.samples, rng, 5.0, SIZE - 5.0, 200, 0.05, 1.0, 1.6)),
    ]
    print(f'machine: {machine()}')
    print(f'command: scripts/run.sh python bench/verifier.py --samples {args.samples}')
    print(f'resolution {config.resolution} m, {config.angular_resolution} rad; hold 0.4 s; '
          f'load average {start_load} at the start\n')
    print(HEADER)
    outcomes = []
    for name, verifier, batch in cases:
        measure(verifier, batch[:50], 0.4)                 # warm-up
        every, safe, reasons = measure(verifier, batch, 0.4)
        print(row(name, stats_ms(every)))
        if safe:
            print(row(f'{name}, safe answers only', stats_ms(safe)))
        outcomes.append((name, reasons))
    print(f'\nload average {load()} at the end')
    for name, reasons in outcomes:
        print(f'{name}: ' + ', '.join(f'{k} {v}' for k, v in sorted(reasons.items())))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
