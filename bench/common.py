"""Shared by the benchmarks: percentiles, the machine line, a ROS domain of their own per run with
the nodes' transport, the child processes they start (always ended, by PID, even on Ctrl-C), a CPU
hog."""
from __future__ import annotations

import atexit
import fcntl
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# Benchmarks take ROS domains 200..229 (tests take 100..199): one lock file per domain, held for
# the life of the process, so two benchmarks running at once never share a graph.
DOMAINS = range(200, 230)
_domain_lock = None


def machine() -> str:
    cpu = 'unknown cpu'
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return (f'{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, '
            f'{platform.system()} {platform.release()}; speed probe {speed_probe_ms():.0f} ms')


def speed_probe_ms() -> float:
    """Median of 5 timings of 10^6 Python additions. Machines of one kind here differ in speed
    from day to day (the same CPU model name, the same benchmark twice as slow), so every figure
    is printed beside this one to compare runs from different days."""
    times = []
    for _ in range(5):
        start, total = time.perf_counter(), 0
        for i in range(1_000_000):
            total += i
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def load() -> str:
    """The 1/5/15-minute load averages (how idle "idle" was)."""
    try:
        return ' '.join(open('/proc/loadavg').read().split()[:3])
    except OSError:
        return 'unknown'


def command_line() -> str:
    """This benchmark's command, as the README quotes it."""
    script = os.path.relpath(sys.argv[0], Path(__file__).resolve().parents[1])
    return ' '.join(['scripts/run.sh python', script] + sys.argv[1:])


def stats_ms(samples_s: list[float]) -> dict:
    a = np.asarray(samples_s) * 1e3
    return {'n': len(a), 'p50': float(np.percentile(a, 50)), 'p99': float(np.percentile(a, 99)),
            'mean': float(a.mean()), 'max': float(a.max())}


def row(name: str, s: dict) -> str:
    return (f'| {name} | {s["n"]} | {s["p50"]:.3f} | {s["p99"]:.3f} | {s["mean"]:.3f} | '
            f'{s["max"]:.3f} |')


HEADER = ('| case | samples | p50 (ms) | p99 (ms) | mean (ms) | max (ms) |\n'
          '|---|---|---|---|---|---|')


def isolate_ros() -> str:
    """A ROS domain no other benchmark on this host is using, discovery kept on this host, and
    the transport every flywheel node uses (UDP only: configure_transport), so this process talks
    to the nodes as they talk to each other. Call before rclpy.init; returns the transport line."""
    global _domain_lock
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if 'ROS_DOMAIN_ID' not in os.environ:
        start = os.getpid() % len(DOMAINS)
        for k in range(len(DOMAINS)):
            domain = DOMAINS[(start + k) % len(DOMAINS)]
            lock = open(Path(tempfile.gettempdir()) / f'flywheel-bench-domain-{domain}.lock', 'w')
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            _domain_lock = lock
            os.environ['ROS_DOMAIN_ID'] = str(domain)
            break
        else:
            os.environ['ROS_DOMAIN_ID'] = str(DOMAINS[start])
    from flywheel.ros.transport import configure_transport
    return configure_transport()


def provision_keys() -> Path:
    """This run's own robot keys and trust root (``flywheel keys init`` in a scratch ROS_HOME,
    which the node processes inherit): nodes sign verdicts and check signed proposals."""
    from datetime import datetime, timezone

    from flywheel.provision import default_key_dir, provision
    os.environ['ROS_HOME'] = tempfile.mkdtemp(prefix='flywheel-bench-ros-home-')
    return provision(default_key_dir(), datetime.now(timezone.utc)).directory


def node_env(shared_memory: bool = False, scratch: Path | None = None) -> dict[str, str]:
    """The environment a user's shell gives the node processes: discovery on this host, no Fast
    DDS profile of their own, so each node picks its transport itself (UDP only). With
    ``shared_memory`` they get an empty profile file instead: rmw_fastrtps then configures its
    own LOCALHOST transports, shared memory + UDP (the baseline the UDP profile replaced)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')}
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if shared_memory:
        scratch = scratch or Path(tempfile.mkdtemp(prefix='flywheel-bench-'))
        empty = scratch / 'no_participant_profile.xml'
        empty.write_text('<?xml version="1.0" encoding="UTF-8" ?>\n'
                         '<dds xmlns="http://www.eprosima.com"><profiles/></dds>\n')
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(empty)
    return env


class Children:
    """Every process a benchmark starts besides its node graphs: ended by PID (SIGKILL) at
    close(), at interpreter exit, and on SIGTERM/SIGHUP (turned into KeyboardInterrupt so the
    benchmark's finally blocks, which stop the graphs, run too)."""

    def __init__(self):
        self.processes: list[subprocess.Popen] = []
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)

    def spawn(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault('stdin', subprocess.DEVNULL)
        kwargs.setdefault('start_new_session', True)   # a Ctrl-C reaches only the benchmark
        p = subprocess.Popen(cmd, **kwargs)
        self.processes.append(p)
        return p

    def kill(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()
        if p in self.processes:
            self.processes.remove(p)

    def close(self) -> None:
        for p in list(self.processes):
            self.kill(p)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f'signal {signum}')


HOG = 'while True:\n    pass\n'


class Receiver:
    """A driver's subscriptions, taken on a thread of their own (the driver's publishing thread
    never waits for them, nor they for it)."""

    def __init__(self, node, context=None):
        from rclpy.executors import SingleThreadedExecutor
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True, name='receiver')
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutting down
                return

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=5.0)
        self.executor.shutdown()


class StandingOdometry:
    """Odometry at 50 Hz from a thread of its own on every publisher given: the robot standing
    still at ``pose`` (x, y, yaw in frame map), stamped now by ``clock`` (ns). The Gate approves
    nothing without fresh odometry, so whatever else a driver's threads do must not age it."""

    def __init__(self, publishers, clock, pose: tuple[float, float, float]):
        import math

        from nav_msgs.msg import Odometry

        from flywheel.ros.convert import to_time
        self._to_time, self.publishers, self.clock = to_time, publishers, clock
        self.msg = Odometry()
        self.msg.header.frame_id = 'map'
        self.msg.pose.pose.position.x, self.msg.pose.pose.position.y = pose[0], pose[1]
        self.msg.pose.pose.orientation.z = math.sin(pose[2] / 2)
        self.msg.pose.pose.orientation.w = math.cos(pose[2] / 2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name='odometry')
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.msg.header.stamp = self._to_time(self.clock())
            for pub in self.publishers:
                try:
                    pub.publish(self.msg)
                except Exception:  # noqa: BLE001 - torn down
                    return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class CpuHog:
    """``n`` busy-looping processes at normal priority (default: one per core), started by the
    benchmark and killed by it."""

    def __init__(self, children: Children, n: int | None = None):
        self.children, self.n = children, n or os.cpu_count() or 1
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> 'CpuHog':
        self.processes = [self.children.spawn([sys.executable, '-c', HOG],
                                              stdout=subprocess.DEVNULL)
                          for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for p in self.processes:
            self.children.kill(p)
