"""Starts the node graph as separate processes and stops it cleanly (no rclpy here).

Each node runs in its own session, so a Ctrl-C in the terminal reaches only `flywheel`, which then
asks every node to shut down (SIGINT), waits, and only then escalates to SIGTERM and SIGKILL. A
`flywheel` that dies without doing so takes its nodes with it (flywheel.supervisor).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flywheel.supervisor import supervised_env

GRAPH = ('sim', 'audit', 'oracle', 'verifier', 'gate', 'proposer')
# started only when asked for: flywheel up --with governance
OPTIONAL = ('governance',)
# lifecycle nodes, in bring-up order, and what drives them under `flywheel up` (the Gate last:
# what it depends on, the verifier its escalations go to included, runs before it passes anything)
LIFECYCLE = ('governance', 'oracle', 'verifier', 'gate')
# with governance, these run governance's releases (and the Gate its status) and nothing else
FOLLOWERS = ('oracle', 'verifier', 'gate')
MANAGER = 'lifecycle_manager'
# The lifecycle managers of a fleet on one host, where the robots come up beside each other: on
# two cores, with 5 robots (42 processes) started at once, an Oracle took longer than the default
# 15 s to offer its services, and a Gate already active did not answer get_state for 11 s while
# the others came up. The Gates' own deadlines (their stop) do not depend on this. A params file
# that sets either wins.
SHARED_HOST_TIMING = {'heartbeat_timeout': 30.0, 'transition_timeout': 120.0}


def managed_overrides(nodes: tuple[str, ...]) -> dict[str, dict]:
    """Parameters that hand the lifecycle nodes among ``nodes`` to one lifecycle manager (and,
    with governance, make the Oracle, the verifier and the Gate follow it rather than a static
    spec)."""
    managed = [n for n in LIFECYCLE if n in nodes]
    overrides: dict[str, dict] = {n: {'autostart': False} for n in managed}
    if 'governance' in nodes:
        for n in FOLLOWERS:
            overrides.setdefault(n, {})['follow_governance'] = True
    if managed:
        overrides[MANAGER] = {'node_names': managed}
    return overrides


def ros_value(value) -> str:
    """A parameter value as `ros2 run ... -p name:=value` spells it (YAML)."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(ros_value(v) for v in value) + ']'
    if isinstance(value, str):
        # always quoted: unquoted NAN, true or 1e3 would be read as a number or a bool
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def node_command(node: str, params_file: Path, overrides: dict | None = None,
                 namespace: str = '') -> list[str]:
    cmd = [sys.executable, '-m', f'flywheel.ros.{node}_node', '--ros-args',
           '--params-file', str(params_file)]
    if namespace:
        cmd += ['-r', f'__ns:={namespace}']
    for name, value in (overrides or {}).items():
        cmd += ['-p', f'{name}:={ros_value(value)}']
    return cmd


@dataclass
class Graph:
    """A set of node processes. Use as a context manager: they are stopped on exit, always."""

    nodes: tuple[str, ...]
    params_file: Path
    overrides: dict[str, dict] = field(default_factory=dict)
    env: dict[str, str] | None = None
    log_dir: Path | None = None
    namespace: str = ''
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: list[IO] = field(default_factory=list)

    def start(self, nodes: tuple[str, ...] | None = None) -> 'Graph':
        """Start ``nodes`` (default: every node not yet started)."""
        for node in nodes if nodes is not None else self.nodes:
            if node in self.processes:
                continue
            out = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f'{node}.log', 'wb')
                self._logs.append(out)
            self.processes[node] = subprocess.Popen(
                node_command(node, self.params_file, self.overrides.get(node), self.namespace),
                env=supervised_env(self.env), stdout=out,
                stderr=subprocess.STDOUT if out else None,
                stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def participants_created(self) -> bool:
        """Whether every node process has created its DDS participant, seen as its first socket
        (nothing before rclpy's first node opens one). Where /proc cannot tell, assume so."""
        for process in self.processes.values():
            try:
                fds = os.listdir(f'/proc/{process.pid}/fd')
            except OSError:       # exited (its exit is seen elsewhere), or no /proc
                continue
            if not any(_is_socket(f'/proc/{process.pid}/fd/{fd}') for fd in fds):
                return False
        return True

    def exited(self) -> dict[str, int]:
        """Nodes that have exited, with their exit codes."""
        return {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}

    def stop(self, grace: float = 5.0) -> dict[str, int]:
        """SIGINT every node, then SIGTERM, then SIGKILL; return the exit codes."""
        return stop_all([self], grace)[0]

    def __enter__(self) -> 'Graph':
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _is_socket(fd_path: str) -> bool:
    """A file descriptor closed since it was listed is not a socket: a starting process opens
    and closes files all the time (its imports), and once taking such a one for "cannot tell"
    counted a node whose participant did not exist yet as started."""
    try:
        return os.readlink(fd_path).startswith('socket:')
    except OSError:
        return False


def stop_all(graphs: list[Graph], grace: float = 5.0) -> list[dict[str, int]]:
    """Stop every node of ``graphs`` at once (a fleet stopped graph by graph would take the sum
    of their grace periods): SIGINT, then SIGTERM, then SIGKILL; each graph's exit codes."""
    processes = [p for g in graphs for p in g.processes.values()]
    # SIGUSR1 first asks a node that did not stop for its threads' stacks (flywheel.ros.run)
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 2.0), (signal.SIGUSR1, 0.5),
                      (signal.SIGKILL, 2.0)):
        alive = [p for p in processes if p.poll() is None]
        for p in alive:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        for p in alive:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for g in graphs:
        for log in g._logs:
            log.close()
    return [{n: p.returncode for n, p in g.processes.items()} for g in graphs]


def file_sets(params_file: Path, node: str) -> set[str]:
    """The parameters ``params_file`` gives ``node`` in any namespace (blocks named node,
    ns/node, /**/node or /**)."""
    import yaml
    try:
        doc = yaml.safe_load(params_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return set()     # the node itself refuses a file it cannot read, with the reason
    names = set()
    for name, block in doc.items() if isinstance(doc, dict) else ():
        if str(name).rsplit('/', 1)[-1] in (node, '**') and isinstance(block, dict):
            names |= set(block.get('ros__parameters') or {})
    return names


def ros_home() -> Path:
    return Path(os.environ.get('ROS_HOME', Path.home() / '.ros'))


def participants(graphs: list['Graph']) -> int:
    """DDS participants the graphs bring to this host: one per node process, and one more per
    Gate (its output process)."""
    return sum(len(g.nodes) + g.nodes.count('gate') for g in graphs)


def robot_namespaces(count: int) -> list[str]:
    """A fleet's namespaces (robot_0 ... robot_{count-1}); [''] for one robot without one."""
    return [f'/robot_{i}' for i in range(count)] if count else ['']


def fleet(nodes: tuple[str, ...], params: Path, robots: list[str], env=None, log_dir=None,
          overrides: dict[str, dict] | None = None) -> list['Graph']:
    """The graphs `flywheel up` starts: every robot's nodes in its namespace, each robot with its
    own lifecycle manager; governance (if asked for) once, at the root, governing all of them
    (its canary runs on the first canary_robots of them first)."""
    per_robot = tuple(n for n in nodes if n != 'governance')
    graphs = []
    for ns in robots if per_robot else ():       # `--only governance`: no robot's graph here
        base = {k: dict(v) for k, v in (overrides or {}).items()}
        lifecycle = managed_overrides(per_robot + (('governance',) if 'governance' in nodes
                                                   else ()))
        lifecycle.pop('governance', None)
        if MANAGER in lifecycle:
            lifecycle[MANAGER]['node_names'] = [n for n in lifecycle[MANAGER]['node_names']
                                                if n != 'governance']
        for node, values in lifecycle.items():
            base.setdefault(node, {}).update(values)
        if ns and 'audit' in per_robot and 'ledger_path' not in base.get('audit', {}):
            # one ledger per robot (the default path would be shared by every robot's audit)
            base.setdefault('audit', {})['ledger_path'] = str(
                ros_home() / 'alignment_flywheel' / ns.strip('/') / 'audit.sqlite')
        names = per_robot + ((MANAGER,) if MANAGER in lifecycle else ())
        graphs.append(Graph(names, params, base, env,
                            (log_dir / (ns.strip('/') or 'robot')) if log_dir else None,
                            namespace=ns))
    if 'governance' in nodes:
        base = {'governance': {**(overrides or {}).get('governance', {}), 'robots': robots,
                               'autostart': False},
                MANAGER: {'node_names': ['governance']}}
        graphs.insert(0, Graph(('governance', MANAGER), params, base, env,
                               (log_dir / 'governance') if log_dir else None))
    if len(robots) > 1:
        set_by_file = file_sets(params, MANAGER)
        timing = {k: v for k, v in SHARED_HOST_TIMING.items() if k not in set_by_file}
        for graph in graphs:
            manager = graph.overrides.get(MANAGER)
            if manager is not None:
                graph.overrides[MANAGER] = {**timing, **manager}
    return graphs
