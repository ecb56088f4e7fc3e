"""`flywheel demo --story`: the flywheel end to end on the embedded world, the driver playing the
operator.

The world holds a hazard release 1.0.0 does not know (flywheel/story.py). The graph runs as
`flywheel up --with governance` starts it, every node its own process, with demo keys made for
this run (labelled so, in OUT/demo-keys/) and a ledger, store and world in OUT. The operator's
steps are the `flywheel` commands an operator types, run as processes of their own while this
one keeps listening: push release 1; once the hazard has produced an incident, `governance run`
on the ledger, `release build` of the candidate with a short rollout plan, `release sign` with
the demo operator key, `release push`. Governance then stages it shadow -> canary -> full by
itself. The Proposer is started once and never touched; the run fails if it exits.

Every wait is on something the graph exposes (a governance event, the Oracle's status, an
incident, a process exit), each with a deadline; the report is written whatever happens.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from flywheel.cli.demo import audit_summary
from flywheel.cli.graph import GRAPH, MANAGER, SHARED_HOST_TIMING, fleet
from flywheel.errors import GraphError, InputError
from flywheel.provision import NODE_KEYS, OPERATOR, ROOT, provision
from flywheel.story import (FAULT_KINDS, FAULT_MAX_DURATION, FAULT_MIN_DURATION, FAULT_RATE,
                            FAULT_SEED, FIRST_PLAN, HAZARD_ID, ROUTE, STORY_PLAN, figures,
                            story_world, write_story)

STARTUP_TIMEOUT = 60.0       # s for the graph to come up and run release 1
INCIDENT_TIMEOUT = 60.0      # s for the hazard's first incident after the Proposer starts
ROLLOUT_TIMEOUT = 120.0      # s for release 2 to reach full once pushed
OPERATOR_TIMEOUT = 180.0     # s for one operator command
PROBES = 600                 # red team probes (as many again around flaws): seconds, not minutes
BASIN_SIZE = 150
RELEASE_FILES = ('release-1.tar.gz', 'release-2.tar.gz', 'release-1-plan.yaml',
                 'release-1.0.0-spec.yaml')
KEYS_LABEL = ('DEMO KEYS, made by `flywheel demo --story` for one run of the story and for '
              'nothing else.\nThey sign this run\'s releases and nodes; never install them on a '
              'robot, never use them as an operator\'s own keys.\n')


def check_out_dir(out_dir: Path) -> None:
    """InputError unless ``out_dir`` can be made and written, and is new, empty or an earlier
    story's (a story clears its subfolders: never someone else's). Said before anything starts."""
    if (out_dir.is_dir() and any(out_dir.iterdir())
            and not any((out_dir / mark).exists() for mark in ('story.json', 'demo-keys'))):
        raise InputError(f'--out {out_dir}: not empty and no earlier story: choose a new or empty '
                         'folder')
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / '.writable'
        probe.write_bytes(b'')
        probe.unlink()
    except OSError as exc:
        raise InputError(f'--out {out_dir}: not a writable directory '
                         f'({exc.strerror or exc})') from exc


def run_story(out_dir: Path, watch_after: float, seed: int | None = None) -> int:
    """0 when the story completed: the hazard's incidents, a release refined from them at full,
    none at the hazard after it, and the same Proposer process throughout."""
    if not 0.0 <= watch_after <= 600.0:             # NaN fails this too
        raise InputError(f'--duration {watch_after}: seconds watched after full must be in '
                         '[0, 600]')
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    out_dir = out_dir.resolve()           # the nodes resolve relative paths against config/
    from flywheel.ros.params import package_config_dir     # (rclpy: only once the input is good)
    config = package_config_dir()
    for stale in ('store', 'candidates', 'logs', 'demo-keys'):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    for stale in list(out_dir.glob('audit*')) + [out_dir / n for n in RELEASE_FILES]:
        stale.unlink(missing_ok=True)          # each story starts its own ledger and releases
    keys = out_dir / 'demo-keys'
    provision(keys, datetime.now(timezone.utc), expires_days=1)
    (keys / 'DEMO-KEYS.txt').write_text(KEYS_LABEL)
    world_doc = story_world(yaml.safe_load((config / 'world.yaml').read_text()))
    (out_dir / 'world.yaml').write_text('# The embedded world with a hazard no Oracle release '
                                        f'knows yet ({HAZARD_ID}), for the story.\n'
                                        + yaml.safe_dump(world_doc, sort_keys=False))
    (out_dir / 'story-rollout.yaml').write_text(yaml.safe_dump(STORY_PLAN, sort_keys=False))
    (out_dir / 'release-1-plan.yaml').write_text(yaml.safe_dump(FIRST_PLAN))
    seed = FAULT_SEED if seed is None else seed
    settings = {'seed': seed, 'fault_rate': FAULT_RATE, 'fault_kinds': list(FAULT_KINDS),
                'fault_durations_s': [FAULT_MIN_DURATION, FAULT_MAX_DURATION],
                'route': list(ROUTE), 'start': world_doc['start'], 'hazard': HAZARD_ID,
                'watch_after_s': watch_after, 'probes': PROBES, 'basin_size': BASIN_SIZE,
                'rollout_plan': STORY_PLAN}
    story = _Story(out_dir, config, keys, seed)
    try:
        code = story.run(watch_after)
    finally:
        story.close()
    timeline = story.recorder_timeline
    numbers = figures(timeline, story.end_t, story.evidence, story.proposer_pid,
                      story.proposer_pid_end)
    numbers['pass_replayed'] = _replay(story.recorder.pass_proposals, config, story.candidate)
    ledger = out_dir / 'audit.sqlite'
    numbers['proposer_parameter_changes'] = changes = _parameter_changes(ledger, 'proposer')
    if changes and not code:
        timeline.failed, code = f'the Proposer was reconfigured ({changes} changes)', 1
    as_json, as_md = write_story(out_dir, timeline, numbers, settings)
    for entry in timeline.entries:
        print(f'  {entry.t:7.1f} s  {entry.kind:<10} {entry.text}')
    print('\n' + '\n'.join(f'  {k}: {v}' for k, v in numbers.items()))
    print(f'\nreport: {as_md} and {as_json}')
    if ledger.exists():
        print(f'ledger: {ledger} ({audit_summary(ledger)})')
    print(f'demo keys (this run only): {keys}')
    if code:
        print(f'FAIL: {timeline.failed}', file=sys.stderr)
    return code


def _replay(raw: list[bytes], config: Path, candidate: Path | None) -> dict | None:
    """The pass's proposals judged under release 1 and the refined release (flywheel.story)."""
    if not raw or candidate is None:
        return None
    from flywheel.agents.judge import Judge
    from flywheel.enforcement.policy import load_policy
    from flywheel.oracle.spec import load_spec
    from flywheel.story import replay
    from flywheel.wire import decode_proposal
    policy = load_policy(config / 'policy.yaml')
    specs = [load_spec(config / 'oracle_spec.yaml'), load_spec(candidate / 'oracle_spec.yaml')]
    return replay([decode_proposal(d) for d in raw],
                  {spec.version: Judge(spec, policy) for spec in specs})


def _parameter_changes(ledger: Path, node: str) -> int:
    """Live parameter changes of ``node`` the audit recorded (the Proposer's must be none)."""
    from flywheel.audit.ledger import connect
    from flywheel.audit.query import Query, records
    if not ledger.exists():
        return 0
    conn = connect(ledger, readonly=True)
    try:
        return sum(1 for r in records(conn, Query(kind='parameter'))
                   if str(r.get('node', '')).rstrip('/').endswith(node))
    finally:
        conn.close()


class _Story:
    """One run: the graph, the recorder and the operator's commands."""

    def __init__(self, out_dir: Path, config: Path, keys: Path, seed: int):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from flywheel.ros.client import warn
        from flywheel.ros.story_recorder import StoryRecorder
        from flywheel.ros.transport import creating_participant
        self.out, self.keys, self.config = out_dir, keys, config
        self.ledger = out_dir / 'audit.sqlite'
        self.log_dir = out_dir / 'logs'
        self.domain = int(os.environ.get('ROS_DOMAIN_ID', 1 + os.getpid() % 80))
        self.env = dict(os.environ, ROS_DOMAIN_ID=str(self.domain))
        self.context = Context()
        rclpy.init(context=self.context, domain_id=self.domain, args=[])
        self.executor = SingleThreadedExecutor(context=self.context)
        with creating_participant(warn):
            self.recorder = StoryRecorder(context=self.context)
        self.executor.add_node(self.recorder)
        self.recorder_timeline = self.recorder.timeline
        self.graphs = fleet(GRAPH + ('governance',), config / 'flywheel.yaml', [''], self.env,
                            self.log_dir, self._overrides(seed))
        for graph in self.graphs:
            # the story shares two cores with everything else on the machine, as a fleet does
            graph.overrides.setdefault(MANAGER, {}).update(SHARED_HOST_TIMING)
        self.proposer_pid = 0
        self.proposer_pid_end: int | None = None
        self.evidence: dict | None = None
        self.candidate: Path | None = None
        self.end_t = 0.0
        self._operator_log = open(out_dir / 'operator.log', 'w')

    def _overrides(self, seed: int) -> dict:
        keys, root = self.keys, str(self.keys / ROOT)
        key = {role: str(keys / name) for role, name in NODE_KEYS.items()}
        return {
            'governance': {'store_dir': str(self.out / 'store'), 'trust_root_path': root,
                           'signing_key_path': key['governance']},
            'oracle': {'signing_key_path': key['oracle'], 'trust_root_path': root},
            'verifier': {'signing_key_path': key['verifier'], 'trust_root_path': root,
                         'ledger_path': str(self.ledger)},
            'gate': {'trust_root_path': root},
            'audit': {'ledger_path': str(self.ledger)},
            'sim': {'world_path': str(self.out / 'world.yaml')},
            'proposer': {'signing_key_path': key['proposer'], 'fault_rate': FAULT_RATE,
                         'fault_seed': seed, 'fault_kinds': list(FAULT_KINDS),
                         'fault_min_duration': FAULT_MIN_DURATION,
                         'fault_max_duration': FAULT_MAX_DURATION,
                         'planner.route': list(ROUTE)},
        }

    # -- waiting --------------------------------------------------------------------------------

    def _alive(self) -> None:
        for graph in self.graphs:
            died = graph.exited()
            if died:
                raise GraphError(f'node exited: {died}; see {self.log_dir}')

    def _spin_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self._alive()
            if time.monotonic() > deadline:
                raise GraphError(f'{what} within {timeout:.0f} s; see {self.log_dir}')
            self.executor.spin_once(timeout_sec=0.05)

    def _shown(self, arg: str) -> str:
        """A path as the report shows it: relative to OUT, or the package config file's name."""
        if not os.path.isabs(arg):
            return arg
        path = Path(arg)
        try:
            return str(path.relative_to(self.out))
        except ValueError:
            return f'config/{path.name}' if path.parent == self.config else path.name

    def _operator(self, *argv: str) -> str:
        """Run `flywheel ARGV` as the operator would, listening meanwhile; its output."""
        shown = ' '.join(['flywheel', *map(self._shown, argv)])
        self.recorder.timeline.add(self.recorder.now(), 'operator', shown)
        self._operator_log.write(f'$ {shown}\n')
        self._operator_log.flush()
        process = subprocess.Popen([sys.executable, '-m', 'flywheel.cli', *argv], env=self.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            self._spin_until(lambda: process.poll() is not None, OPERATOR_TIMEOUT,
                             f'`{shown}` did not finish')
        finally:
            if process.poll() is None:
                process.kill()
            output = process.communicate()[0].decode(errors='replace')
        self._operator_log.write(output + f'(exit {process.returncode})\n')
        self._operator_log.flush()
        if process.returncode != 0:
            raise GraphError(f'`{shown}` exited {process.returncode}: '
                             f'{output.strip().splitlines()[-1] if output.strip() else ""}')
        return output

    # -- the story ------------------------------------------------------------------------------

    def run(self, watch_after: float) -> int:
        rec, timeline = self.recorder, self.recorder.timeline
        try:
            self._release(1, self.config / 'oracle_spec.yaml', self.out / 'release-1-plan.yaml',
                          None)
            robot = self.graphs[-1]
            for graph in self.graphs[:-1]:
                graph.start()
            robot.start(tuple(n for n in robot.nodes if n != 'proposer'))
            self._spin_until(lambda: rec.governance_active, STARTUP_TIMEOUT,
                             'governance did not become active')
            self._operator('release', 'push', str(self.out / 'release-1.tar.gz'),
                           '--timeout', '30')
            self._spin_until(lambda: rec.oracle_running == '1.0.0', STARTUP_TIMEOUT,
                             'the Oracle did not run release 1')
            # The Proposer last, on a graph that decides: its seeded first fault is the pass.
            rec.rebase(time.monotonic())
            robot.start(('proposer',))
            proposer = robot.processes['proposer']
            self.proposer_pid = proposer.pid
            timeline.add(0.0, 'note', f'Proposer started (pid {proposer.pid}); release 1.0.0 '
                         f'active, {HAZARD_ID} unknown to it')
            self._spin_until(lambda: timeline.hazard_incidents(), INCIDENT_TIMEOUT,
                             f'no incident at {HAZARD_ID}')
            self._refine()
            self._spin_until(lambda: rec.ended(2) is not None, ROLLOUT_TIMEOUT,
                             'release 2 did not reach full')
            if timeline.full_t is None:
                raise GraphError('the rollout of release 2 ended without reaching full; see '
                                 'the timeline')
            until = time.monotonic() + watch_after
            self._spin_until(lambda: time.monotonic() >= until, watch_after + 5.0, 'watching')
            return self._verdict()
        except GraphError as exc:
            timeline.failed = str(exc)
            return 1
        finally:
            self.end_t = rec.now()
            proposer = self.graphs[-1].processes.get('proposer')
            if proposer is not None:
                self.proposer_pid_end = proposer.pid if proposer.poll() is None else None

    def _release(self, number: int, spec: Path, plan: Path, regression: Path | None) -> Path:
        bundle = self.out / f'release-{number}.tar.gz'
        args = ['release', 'build', str(spec), '--number', str(number), '--plan', str(plan),
                '--expires-days', '1', '--out', str(bundle)]
        if number > 1:
            args += ['--parent', '1.0.0', '--regression', str(regression)]
        self._operator(*args)
        self._operator('release', 'sign', str(bundle), '--key', str(self.keys / OPERATOR))
        return bundle

    def _refine(self) -> None:
        """The operator's part once the hazard has shown itself: the agents on the ledger, then
        build, sign and push their candidate."""
        spec = self.out / 'release-1.0.0-spec.yaml'
        shutil.copyfile(self.config / 'oracle_spec.yaml', spec)
        candidates = self.out / 'candidates'
        self._operator('governance', 'run', '--ledger', str(self.ledger), '--spec', str(spec),
                       '--out', str(candidates), '--probes', str(PROBES), '--basin-size',
                       str(BASIN_SIZE))
        found = sorted(candidates.glob('*/batch.json'))
        if len(found) != 1:
            raise GraphError(f'expected one candidate in {candidates}, found {len(found)}')
        where = self.candidate = found[0].parent
        self.evidence = json.loads(found[0].read_text())['evidence']
        bundle = self._release(2, where / 'oracle_spec.yaml', self.out / 'story-rollout.yaml',
                               where / 'regression.yaml')
        self._operator('release', 'push', str(bundle), '--timeout', '60')

    def _verdict(self) -> int:
        timeline = self.recorder.timeline
        after = [i for i in timeline.hazard_incidents() if i[0] >= timeline.full_t]
        proposer = self.graphs[-1].processes['proposer']
        if proposer.poll() is not None or proposer.pid != self.proposer_pid:
            timeline.failed = 'the Proposer process did not run throughout'
        elif len(timeline.proposer_epochs) != 1:
            timeline.failed = (f'the Gate decided proposals of {len(timeline.proposer_epochs)} '
                               'Proposer epochs: it restarted')
        elif after:
            timeline.failed = f'{len(after)} incidents at {HAZARD_ID} after full'
        return 1 if timeline.failed else 0

    def close(self) -> None:
        for graph in reversed(self.graphs):
            graph.stop()
        self._operator_log.close()
        self.executor.remove_node(self.recorder)
        self.recorder.destroy_node()
        self.executor.shutdown()
        self.context.try_shutdown()

