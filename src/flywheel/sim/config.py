"""Parameters of the sim node (node `sim`)."""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.settings import setting


@dataclass(frozen=True)
class SimConfig:
    world_path: str = setting('world.yaml', 'World YAML; relative paths resolve against the '
                              "package's config directory.", read_only=True)
    rate: float = setting(50.0, 'Simulation steps per second.', lo=1.0, hi=1000.0, read_only=True)
    cmd_timeout: float = setting(0.5, 'Like a base controller: no cmd_vel for this long (s) '
                                 'means stop.', lo=0.01, hi=10.0, read_only=True)
    episode_gap: float = setting(1.0, 'A collision or near-miss with one object is reported again '
                                 'only after this long (s) clear of it.', lo=0.0, hi=60.0,
                                 read_only=True)
