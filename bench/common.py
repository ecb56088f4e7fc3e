"""Shared by the benchmarks: percentiles, the machine line, a fixed ROS domain per run."""
from __future__ import annotations

import os
import platform

import numpy as np


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
            f'{platform.system()} {platform.release()}')


def stats_ms(samples_s: list[float]) -> dict:
    a = np.asarray(samples_s) * 1e3
    return {'n': len(a), 'p50': float(np.percentile(a, 50)), 'p99': float(np.percentile(a, 99)),
            'mean': float(a.mean()), 'max': float(a.max())}


def row(name: str, s: dict) -> str:
    return (f'| {name} | {s["n"]} | {s["p50"]:.3f} | {s["p99"]:.3f} | {s["mean"]:.3f} | '
            f'{s["max"]:.3f} |')


HEADER = ('| case | samples | p50 (ms) | p99 (ms) | mean (ms) | max (ms) |\n'
          '|---|---|---|---|---|---|')


def isolate_ros() -> None:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('ROS_DOMAIN_ID', str(200 + os.getpid() % 30))

