"""What the release size limits buy: the worst spec inside them, and every bomb outside them.

1. The worst-case Oracle specs the limits admit (flywheel/oracle/spec.py SpecLimits: zones,
   vertices, coverage cells, max_evidence; flywheel/yamldoc.py YamlLimits), signed 2-of-3: the
   time to verify one (`verify_submission`, as governance and `flywheel release verify` do), to
   build an Oracle from it, the peak memory of both, and the time to score a 50-point proposal
   routed through or beside the worst polygons (median and p99 over many samples, wall and CPU).
   Scoring budget: 10 ms at p99 for every layout. The Gate waits verdict_timeout (0.25 s) for a
   verdict, but the Oracle must also keep up with proposals at 10-50 Hz (20 ms apart at 50 Hz)
   on a 2-core robot computer it shares, and sign and publish each verdict: half of the fastest
   period leaves the rest for them.
2. Each attack of the issue: the time to refuse it, its peak memory, and the error class.

Peak memory is measured in a forked child (VmHWM - VmRSS at the fork), so it includes GEOS and
numpy allocations, not only Python's.

    scripts/run.sh python bench/release_limits.py [--samples 20] [--scoring-samples 2000]
"""
from __future__ import annotations

import argparse
import copy
import gzip
import json
import math
import os
import sys
import tempfile
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from flywheel.errors import ReleaseError  # noqa: E402
from flywheel.kinematics import RobotState, constant_twist_rollout  # noqa: E402
from flywheel.oracle.oracle import Oracle  # noqa: E402
from flywheel.oracle.spec import MAX_EVIDENCE, SPEC_LIMITS  # noqa: E402
from flywheel.proposal import ProposalLimits, make_proposal  # noqa: E402
from flywheel.release.archive import canonical_header, pack  # noqa: E402
from flywheel.release.bundle import (MAX_UNPACKED_BYTES, ROOT, SPEC, TARGETS,  # noqa: E402
                                     build_bundle, read_bundle, sign_bundle)
from flywheel.release.keys import generate_key, load_signer  # noqa: E402
from flywheel.release.root import new_root, sign  # noqa: E402
from flywheel.release.submission import verify_submission  # noqa: E402
from flywheel.signals import EvidenceStatus  # noqa: E402
from flywheel.yamldoc import YAML_LIMITS  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / 'config'
NOW = datetime.now(timezone.utc).replace(microsecond=0)
LATER = NOW + timedelta(days=30)
MiB = 1 << 20
ROUTE = (10.0, 10.0)          # the proposal starts here, heading +x at 0.5 m/s for 5 s (2.5 m)


# -- the worst spec inside the limits -----------------------------------------------------------

def ring(cx: float, cy: float, r: float, n: int, wobble: float = 0.0) -> list:
    a = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    radius = r * (1.0 - wobble * (np.arange(n) % 2))       # alternating: not convex
    return np.c_[cx + radius * np.cos(a), cy + radius * np.sin(a)].round(4).tolist()


LAYOUTS = ('hit', 'near', 'big', 'scattered', 'slivers', 'late', 'crossing')
BUDGET_MS = 10.0              # scoring p99, every layout (see the module docstring)


def worst_spec(layout: str) -> dict:
    """Every limit used up, every zone where the proposal is scored.

    hit:       1,024 zones of 13 vertices overlapping the route (every zone collides);
    near:      the same zones 0.3 m beside the route (every zone within the clearance horizon);
    big:       as many 1,024-vertex zones as the vertex total allows (13), beside the route;
    scattered: 1,024 disjoint 3 cm zones in rows 0.2-0.4 m either side of the route, none
               touching another (every one within the clearance horizon, none collides);
    slivers:   1,024 thin zones running diagonally away from the route on both sides, their
               boxes over the whole route, none touching it (boxes say nothing about distance);
    late:      the same, but one of them lies across the end of the route: one zone touched,
               by the last hulls only;
    crossing:  1,024 thin 6 m zones through the route at every angle, crossing one another.
    Always: a non-convex 1,024-vertex geofence and validated region around it all, 64 speed
    zones holding the route, 128 x 128 coverage cells, max_evidence at its limit.
    """
    limits = SPEC_LIMITS
    doc = yaml.safe_load((CONFIG / 'oracle_spec.yaml').read_text())
    x0, y0 = ROUTE
    around = ring(x0 + 1.25, y0, 9.0, limits.max_vertices, wobble=0.05)
    fixed = len(doc['footprint']) + 2 * limits.max_vertices + 4 * limits.max_speed_zones
    count = limits.max_zones
    sides = (limits.max_total_vertices - fixed) // count
    rng = np.random.default_rng(5)
    if layout == 'big':
        count = (limits.max_total_vertices - fixed) // limits.max_vertices
        zones = [ring(x0 + 2.5 * i / 64, y0 + 0.75, 0.25, limits.max_vertices)
                 for i in range(count)]
    elif layout in ('hit', 'near'):
        cy = y0 if layout == 'hit' else y0 + 0.2 + 0.3 + 0.2
        zones = [ring(x0 + 2.5 * (i % 64) / 64, cy, 0.2, sides) for i in range(count)]
    elif layout == 'scattered':
        zones = [ring(x0 - 1.0 + 4.5 * (i % 128) / 128,
                      y0 + (0.62 + 0.045 * (i // 128 % 4)) * (1 if i < count // 2 else -1),
                      0.015, sides) for i in range(count)]
    elif layout in ('slivers', 'late'):
        zones = []
        for i in range(count):
            a, side = rng.uniform(-4.0, 3.0), 1 if i % 2 else -1
            zones.append(sliver((x0 + a, y0 + side * 0.75), (x0 + a + 5.0, y0 + side * 5.75),
                                0.01, sides))
        if layout == 'late':
            zones[-1] = sliver((x0 + 2.7, y0 - 1.0), (x0 + 2.7, y0 + 1.0), 0.01, sides)
    elif layout == 'crossing':
        zones = []
        for i in range(count):
            centre = np.array([x0 + 2.5 * (i % 64) / 64, y0])
            reach = 3.0 * np.array([np.cos(np.pi * (i + 0.5) / count),
                                    np.sin(np.pi * (i + 0.5) / count)])
            zones.append(sliver(centre - reach, centre + reach, 0.01, sides))
    else:
        raise ValueError(f'layout: {layout!r} is not one of {LAYOUTS}')
    zones = [{'id': f'z{i}', 'polygon': z} for i, z in enumerate(zones)]
    doc['obstacles'] = zones[:-1]
    doc['keep_out'] = zones[-1:]
    box = [[x0 - 1, y0 - 1], [x0 + 4, y0 - 1], [x0 + 4, y0 + 1], [x0 - 1, y0 + 1]]
    doc['speed_zones'] = [{'id': f's{i}', 'max_speed': 5.0, 'polygon': copy.deepcopy(box)}
                          for i in range(limits.max_speed_zones)]
    doc['geofence'] = around
    doc['uncertainty']['validated_region'] = copy.deepcopy(around)
    side = int(math.isqrt(limits.max_coverage_cells))
    doc['coverage'].update(origin=[0.0, 0.0], resolution=0.25,
                           cells=np.round(np.linspace(0.5, 1.0, side * side), 3)
                           .reshape(side, side).tolist())
    doc['max_evidence'] = MAX_EVIDENCE
    return doc


def sliver(start, end, width: float, vertices: int) -> list:
    """A thin convex zone from ``start`` to ``end`` with ``vertices`` vertices (the extra ones
    along its long sides)."""
    start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    along = end - start
    normal = np.array([-along[1], along[0]]) * width / (2.0 * np.linalg.norm(along))
    t = np.linspace(0.0, 1.0, vertices // 2)[:, None]
    side = start + t * along
    return np.concatenate([side - normal, (side + normal)[::-1]]).round(6).tolist()


def proposal(seq: int):
    t_ns = (np.arange(50) * 0.1e9).astype(np.int64)
    states = constant_twist_rollout(RobotState(*ROUTE, 0.0), 0.5, 0.0, 50, 0.1)
    return make_proposal(f'proposer/{seq}', 'proposer', seq, 'map', 0, t_ns, states, (0.5, 0.0))


# -- keys, signing, crafted bundles -------------------------------------------------------------

def keys(scratch: Path):
    signers = []
    for name in ('alice', 'bob', 'carol'):
        generate_key(scratch / f'{name}.pem')
        signers.append(load_signer(scratch / f'{name}.pem'))
    root = new_root([s.public_key for s in signers], 2, 2, NOW + timedelta(days=365))
    for s in signers[:2]:
        sign(root, s)
    return signers, root


def signed(spec: bytes, signers, number: int = 1) -> bytes:
    """Targets signed 2-of-3 over ``spec`` as given (what build_bundle would refuse too)."""
    from tuf.api.metadata import Metadata, TargetFile, Targets
    target = TargetFile.from_data(SPEC, spec, ['sha256'])
    target.unrecognized_fields['custom'] = {'oracle_version': '9.9.9', 'parent_version': ''}
    md = Metadata(Targets(version=number, expires=LATER, targets={SPEC: target}))
    for s in signers[:2]:
        md.sign(s, append=True)
    return pack({TARGETS: md.to_bytes(), SPEC: spec})


def base_spec() -> bytes:
    return (CONFIG / 'oracle_spec.yaml').read_text().replace('version: "1.0.0"',
                                                            'version: "9.9.9"', 1).encode()


def ustar(name: str, size: int, typeflag: bytes) -> bytes:
    raw = bytearray(canonical_header('x', size))
    raw[0:100] = name.encode()[:100].ljust(100, b'\0')
    raw[156:157] = typeflag
    raw[148:156] = b' ' * 8
    raw[148:156] = b'%06o\0 ' % sum(raw)
    return bytes(raw)


def gzip_bomb(prefix: bytes, zeros: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    return head + block * (zeros // MiB) + c.flush()


def attacks(signers, root) -> list[tuple[str, bytes]]:
    spec = base_spec()
    keep_out = lambda n: spec.replace(b'keep_out:\n', (  # noqa: E731
        'keep_out:\n  - {id: huge, polygon: [' + ','.join(f'[{i % 2},{i}]' for i in range(n))
        + ']}\n').encode(), 1)
    alias = ['a0: &a0 [' + ','.join(['1'] * 9) + ']']
    alias += [f'a{i}: &a{i} [' + ','.join([f'*a{i - 1}'] * 9) + ']' for i in range(1, 8)]
    pax = b'9' * 150_000 + b' path=oracle_spec.yaml\n'
    pax_tar = ustar('PaxHeader/x', len(pax), b'x') + pax + bytes(-len(pax) % 512) + bytes(1024)
    good = signed(spec, signers)
    files = read_bundle(good)
    extra_nodes = spec + b'padding: [' + b'0,' * (YAML_LIMITS.max_nodes - 1000) + b']\n'
    return [
        ('gzip bomb: long-name header, 1 GiB unpacked', gzip_bomb(
            ustar('././@LongLink', 1 << 30, b'L'), 1 << 30)),
        ('gzip bomb: one member of 1 GiB', gzip_bomb(ustar(SPEC, 1 << 30, b'0'), 1 << 30)),
        ('gzip bomb: 1 GiB of zeros after the last member', gzip_bomb(
            gzip.decompress(good), 1 << 30)),
        ('PAX header of 150k digits (CVE-2024-6232)', gzip.compress(pax_tar, mtime=0)),
        ('signed YAML alias bomb (9^8 cells)', signed(spec + ('\n'.join(alias) + '\n').encode(),
                                                       signers)),
        ('signed keep-out zone of 10^6 vertices', signed(keep_out(10**6), signers)),
        ('signed keep-out zone of 10^5 vertices', signed(keep_out(10**5), signers)),
        ('signed keep-out zone of 2,000 vertices', signed(keep_out(2000), signers)),
        ('signed YAML nested 100,000 deep', signed(
            spec + b'x: ' + b'[' * 100_000 + b']' * 100_000 + b'\n', signers)),
        (f'signed spec of ~{YAML_LIMITS.max_nodes:,} YAML nodes (parsed, refused by its schema)',
         signed(extra_nodes, signers)),
        ('signed release number 2^64', signed(spec, signers, number=2**64)),
        ('junk after the gzip stream', good + b'junk'),
        ('root.json no signature pins', pack({**files, ROOT: root.to_bytes()})),
    ]


# -- measuring ----------------------------------------------------------------------------------

def _status_kib(field: str) -> int:
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1])
    return 0


def in_child(work) -> dict:
    """Run ``work()`` in a forked child: its result (JSON-able) and its peak RSS growth (MiB)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # child
        os.close(read)
        start = _status_kib('VmRSS')
        try:
            out = {'result': work()}
        except Exception as exc:  # noqa: BLE001 - reported, not raised, by the parent
            out = {'result': f'{type(exc).__name__}: {exc}'}
        out['peak_mib'] = (_status_kib('VmHWM') - start) / 1024
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b''.join(chunks))


def timed(fn, samples: int) -> np.ndarray:
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return np.asarray(out) * 1e3


def refuse(bundle: bytes, root) -> str:
    try:
        verify_submission(bundle, root, NOW, 0)
    except ReleaseError as exc:
        return type(exc).__name__
    return 'ACCEPTED'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=20,
                        help='verify/build/refusal samples per case (default 20)')
    parser.add_argument('--scoring-samples', type=int, default=2000,
                        help='scored proposals per layout (default 2000)')
    args = parser.parse_args(argv)
    if hasattr(os, 'sched_setaffinity'):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # one core
    with tempfile.TemporaryDirectory(prefix='flywheel-bench-limits-') as scratch:
        signers, root = keys(Path(scratch))
    limits = SPEC_LIMITS
    print(f'machine: {machine()}')
    print(f'command: scripts/run.sh python bench/release_limits.py --samples {args.samples} '
          f'--scoring-samples {args.scoring_samples}')
    print(f'limits: {limits.max_zones} obstacle+keep-out zones, {limits.max_speed_zones} speed '
          f'zones, {limits.max_vertices} vertices per polygon, {limits.max_total_vertices} in '
          f'all, {limits.max_coverage_cells} coverage cells; YAML {YAML_LIMITS.max_nodes} nodes, '
          f'depth {YAML_LIMITS.max_depth}, scalars of {YAML_LIMITS.max_scalar_chars} chars, no '
          f'aliases; bundle unpacks to <= {MAX_UNPACKED_BYTES} bytes; one core; load average '
          f'{os.getloadavg()[0]:.2f} at the start\n')

    print('| worst spec inside the limits | bundle (bytes) | YAML nodes | verify p50 / max (ms) '
          '| build Oracle p50 / max (ms) | peak memory verify+build (MiB) | scoring p50 (ms) '
          '| scoring p99 (ms) | scoring max (ms) | scoring CPU p50 / p99 (ms) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    over = {'CPU': [], 'wall': []}
    for layout in LAYOUTS:
        text = yaml.safe_dump(worst_spec(layout), default_flow_style=None, width=1 << 20)
        text = text.replace("version: 1.0.0", "version: '1.0.0'")
        bundle = build_bundle(text.encode(), 1, LATER)
        for s in signers[:2]:
            bundle = sign_bundle(bundle, s)
        nodes = sum(1 for e in yaml.parse(text, Loader=yaml.CSafeLoader)
                    if isinstance(e, (yaml.ScalarEvent, yaml.CollectionStartEvent)))
        release = verify_submission(bundle, root, NOW, 0)[0]
        verify_ms = timed(lambda: verify_submission(bundle, root, NOW, 0), args.samples)
        build_ms = timed(lambda: Oracle(release.spec, ProposalLimits()), args.samples)
        peak = in_child(lambda: bool(Oracle(verify_submission(bundle, root, NOW, 0)[0].spec,
                                            ProposalLimits())))['peak_mib']
        oracle = Oracle(release.spec, ProposalLimits())
        probe = oracle.evaluate(proposal(0))
        if probe.evidence_status == EvidenceStatus.INPUT_REJECTED:
            raise SystemExit(f'the benchmark proposal is rejected as input: {probe.evidence}')
        wall, cpu = [], []
        for i in range(args.scoring_samples):
            p = copy.copy(proposal(i))
            start, start_cpu = time.perf_counter(), time.thread_time()
            oracle.evaluate(p)
            cpu.append(time.thread_time() - start_cpu)
            wall.append(time.perf_counter() - start)
        s, c = np.asarray(wall) * 1e3, np.asarray(cpu) * 1e3
        over['wall'] += [layout] if np.percentile(s, 99) > BUDGET_MS else []
        over['CPU'] += [layout] if np.percentile(c, 99) > BUDGET_MS else []
        print(f'| {layout}: {len(release.spec.obstacles) + len(release.spec.keep_out)} zones '
              f'(collision risk {probe.collision_risk:.0f}, clearance {probe.min_clearance:.2f} '
              f'm) | {len(bundle)} | {nodes} | {np.median(verify_ms):.0f} / {verify_ms.max():.0f} '
              f'| {np.median(build_ms):.1f} / {build_ms.max():.1f} | {peak:.0f} '
              f'| {np.median(s):.2f} | {np.percentile(s, 99):.2f} | {s.max():.2f} '
              f'| {np.median(c):.2f} / {np.percentile(c, 99):.2f} |')
    print(f'\nscoring budget, p99 <= {BUDGET_MS:g} ms for every layout: '
          + '; '.join(f'{clock} time ' + (f'OVER for {", ".join(late)}' if late else 'met')
                      for clock, late in over.items())
          + f' (wall time includes the time the core was given to other processes: load '
          f'average {os.getloadavg()[0]:.2f} at the end)')

    print('\n| attack | bundle (bytes) | refused with | refusal p50 / max (ms) '
          '| peak memory (MiB) |')
    print('|---|---|---|---|---|')
    for name, bundle in attacks(signers, root):
        error = refuse(bundle, root)
        ms = timed(lambda: refuse(bundle, root), args.samples)
        peak = in_child(lambda: refuse(bundle, root))['peak_mib']
        print(f'| {name} | {len(bundle)} | {error} | {np.median(ms):.1f} / {ms.max():.1f} '
              f'| {peak:.1f} |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
