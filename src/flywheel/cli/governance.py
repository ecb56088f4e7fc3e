"""`flywheel governance run|candidates`: the governance agents offline (no ROS needed).

`run` reads a ledger and the Oracle spec in force, runs the monitor, the red team (against that
spec, asking the verifier, which knows the ledger's incidents), triage and the refiner once, and
writes the candidate to ``OUT/<candidate version>/``: the spec, regression suite and rollout plan
as `flywheel release build --plan --regression` takes them, and the batch with its evidence.
Nothing is signed: operators review `flywheel governance candidates`, then build, sign and push.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from flywheel.errors import InputError

EXIT_OK, EXIT_OPEN = 0, 1
DEFAULT_DIR = 'governance-candidates'
# Offline there is no Gate waiting: the verifier may take its time on every probe.
OFFLINE_DEADLINE_S = 10.0


def _config_file(name: str) -> Path:
    from flywheel.ros.params import package_config_dir
    return package_config_dir() / name


def _basin(path: str | None, spec, policy, verifier, rng, size: int):
    """From a basin.yaml of an earlier candidate (its cumulative count carries over), from a
    regression suite's golden cases (counted against ``spec`` as the first release), or sampled
    from ``spec``."""
    from flywheel.agents.basin import Basin, first_basin, sample_basin
    from flywheel.agents.judge import Judge
    from flywheel.release.regression import parse_suite
    from flywheel.yamldoc import load_yaml
    if path is None:
        return sample_basin(spec, policy, verifier, rng, size, time.monotonic_ns)
    doc = load_yaml(path)
    if 'first_version' in doc:
        return Basin.from_doc(doc, spec, path)
    suite = parse_suite(doc, spec, path)
    if not suite.golden:
        raise InputError(f'{path}: holds no golden case')
    return first_basin(suite.golden, Judge(spec, policy))


def cmd_run(args) -> int:
    # the agents import numpy, shapely and the Oracle: only when asked to run
    import numpy as np

    from flywheel.agents.candidate import BATCH, candidate_files, read_batch
    from flywheel.agents.monitor import Monitor
    from flywheel.agents.red_team import RedTeam, RedTeamConfig
    from flywheel.agents.refiner import Refiner
    from flywheel.agents.triage import triage
    from flywheel.audit.ledger import connect
    from flywheel.audit.query import Query, records
    from flywheel.enforcement.policy import load_policy
    from flywheel.oracle.spec import parse_spec
    from flywheel.verify.verifier import Knowledge, Verifier, VerifierConfig
    from flywheel.yamldoc import load_yaml
    out = Path(args.out)
    conn = connect(args.ledger, readonly=True)
    try:
        rows = list(records(conn, Query()))
    finally:
        conn.close()
    incidents = [r for r in rows if r['kind'] == 'incident']
    now_ns = max((r['stamp_ns'] for r in rows), default=0)
    spec_doc = load_yaml(args.spec)
    spec = parse_spec(spec_doc)
    policy = load_policy(args.policy or _config_file('policy.yaml'))
    verifier = Verifier(Knowledge.of(spec, incidents), VerifierConfig(
        deadline_s=OFFLINE_DEADLINE_S))
    rng = np.random.default_rng(args.seed)
    basin = _basin(args.basin, spec, policy, verifier, rng, args.basin_size)
    monitor = Monitor().scan(rows, now_ns)
    scale = args.probes / 3000.0
    config = RedTeamConfig(explore=round(1000 * scale), near_zone=round(800 * scale),
                           corner_cut=round(300 * scale), overspeed=round(300 * scale),
                           incident=round(200 * scale), refine=round(3000 * scale))
    report = RedTeam(config).attack(spec, policy, verifier, rng, time.monotonic_ns, incidents)
    queue = triage(incidents, report.flaws, monitor.work,
                   near=[c.start[:2] for c in basin.cases])
    candidate = Refiner().refine(spec_doc, queue, basin, policy, report.audit)
    print(f'ledger: {len(rows)} records, {len(incidents)} incidents, '
          f'{len(monitor.work)} monitor work items')
    print(f'red team against Oracle {spec.version}: {report.probes} probes, '
          f'{len(report.flaws)} flaws (approved by the Gate, unsafe by the verifier), '
          f'{report.unverified} unverified')
    print(f'basin: {basin.size} golden proposals counted against {basin.first_version}'
          + (f', {len(basin.lost)} lost before' if basin.lost else ''))
    if not candidate.changed:
        still = len(report.flaws) + len([i for i in queue if i.incidents])
        print('no candidate: ' + ('nothing to correct' if not still else
                                  f'{len(candidate.rejected)} corrections rejected, flaws stay '
                                  'open for operators'))
        for c in candidate.rejected[:10]:
            print(f'  rejected {c.kind.value} {c.target}: {c.reason}')
        return EXIT_OK if not still else EXIT_OPEN
    files = candidate_files(candidate, policy)
    where = out / candidate.version
    if where.exists():
        raise InputError(f'{where} exists: a candidate {candidate.version} was written there '
                         'before (choose another --out, or remove it)')
    where.mkdir(parents=True)
    for name, data in files.items():
        (where / name).write_bytes(data)
    _print_summary(read_batch(files[BATCH]), where)
    print(f'unsigned; review it, then: flywheel release build {where / "oracle_spec.yaml"} '
          f'--plan {where / "rollout.yaml"} --regression {where / "regression.yaml"} '
          f'--parent {candidate.parent_version} --number N --out BUNDLE')
    return EXIT_OK


def _print_summary(batch: dict, where: Path) -> None:
    e = batch['evidence']
    kinds = ', '.join(f'{n} {k}' for k, n in sorted(e['corrections']['by_kind'].items()))
    basin = e['basin']
    print(f'{batch["candidate_version"]} (from {batch["parent_version"]}) in {where}: '
          f'{e["corrections"]["accepted"]} corrections ({kinds or "none"}), '
          f'{e["corrections"]["rejected"]} rejected; flaws blocked {e["flaws"]["blocked"]}/'
          f'{e["flaws"]["total"]}, incidents blocked {e["incidents"]["blocked"]}/'
          f'{e["incidents"]["total"]}; basin kept {basin["kept"]}/{basin["size"]} since '
          f'{basin["first_version"]} (lost this batch {len(basin["lost_this_batch"])}); '
          f'regression suite {e["regression"]["golden"]} golden + '
          f'{e["regression"]["incidents"]} blocked')


def cmd_candidates(args) -> int:
    from flywheel.agents.candidate import BATCH, read_batch
    root = Path(args.dir)
    if not root.is_dir():
        raise InputError(f'{root}: no such directory')
    found = []
    for batch_path in sorted(root.glob(f'*/{BATCH}')):
        try:
            batch = read_batch(batch_path.read_bytes())
        except OSError as exc:
            raise InputError(f'{batch_path}: {exc.strerror}') from exc
        found.append((batch_path.parent, batch))
    if args.json:
        for where, batch in found:
            print(json.dumps({'dir': str(where), **batch}, sort_keys=True))
        return EXIT_OK
    for where, batch in found:
        _print_summary(batch, where)
        for c in batch['corrections']:
            detail = ', '.join(f'{k} {c[k]:.3g}' for k in ('margin', 'value', 'previous')
                               if isinstance(c.get(k), float) and math.isfinite(c[k]))
            print(f'  {c["kind"]:<16} {c["target"]:<16} answers {c["covers"]} '
                  f'(blocks {c["blocked"]} judged){", " + detail if detail else ""}')
        for c in batch['rejected']:
            print(f'  rejected {c["kind"]} {c["target"]}: {c.get("reason", "")}')
    print(f'({len(found)} candidates in {root}; unsigned: operators build, sign and push)',
          file=sys.stderr)
    return EXIT_OK


def add_commands(sub) -> None:
    gov = sub.add_parser('governance', help='run the governance agents offline and list the '
                         'candidate releases they prepare (never signed)')
    verbs = gov.add_subparsers(dest='verb', required=True, metavar='VERB')
    run = verbs.add_parser('run', help='monitor, red team, triage and refiner once: a candidate '
                           'spec, regression suite, rollout plan and batch in OUT/<version>/')
    run.add_argument('--ledger', required=True, help='the audit ledger (read only)')
    run.add_argument('--spec', required=True, help='the Oracle spec in force (YAML)')
    run.add_argument('--out', required=True, help='candidates directory')
    run.add_argument('--seed', type=int, default=0, help='red team and basin seed (default 0)')
    run.add_argument('--policy', help='the Gate\'s risk policy (default: the package '
                     'config/policy.yaml)')
    run.add_argument('--basin', help='the golden basin: basin.yaml of an earlier candidate '
                     '(counted cumulatively since its first release) or a regression suite '
                     'whose golden cases the spec allows (default: sampled from the spec)')
    run.add_argument('--basin-size', type=_count, default=300,
                     help='golden proposals to sample when no --basin (default 300)')
    run.add_argument('--probes', type=_count, default=3000,
                     help='red team probes before refinement (as many again around flaws; '
                     'default 3000)')
    run.set_defaults(func=cmd_run)
    cands = verbs.add_parser('candidates', help='list candidates with their evidence')
    cands.add_argument('dir', nargs='?', default=DEFAULT_DIR,
                       help=f'candidates directory (default {DEFAULT_DIR})')
    cands.add_argument('--json', action='store_true', help='one batch per line, as JSON')
    cands.set_defaults(func=cmd_candidates)


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f'must be in 1..1000000, got {value}')
    return value

