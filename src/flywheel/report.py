"""The demo report: what each run did (RunRecord), a JSON summary and a map a person reads at a
glance. Plain data in, files out; no ROS."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import shapely

from flywheel.enforcement.decision import Action
from flywheel.oracle.spec import OracleSpec
from flywheel.sim.world import World

MAX_BLOCKED_DRAWN = 300


@dataclass
class RunRecord:
    """Everything one run of the graph was seen to do (filled by flywheel.ros.recorder)."""

    mode: str
    duration: float = 0.0
    proposals: int = 0
    actions: Counter = field(default_factory=Counter)      # Action name -> decisions
    reasons: Counter = field(default_factory=Counter)      # Reason name -> decisions
    collisions: list = field(default_factory=list)         # (object_id, x, y)
    near_misses: list = field(default_factory=list)        # (object_id, x, y)
    path: list = field(default_factory=list)               # (x, y) executed
    blocked: list = field(default_factory=list)            # trajectories [(x, y), ...] refused
    undecided: int = 0                                     # gated: proposals left without one

    def summary(self) -> dict:
        return {
            'mode': self.mode,
            'duration_s': round(self.duration, 2),
            'proposals': self.proposals,
            'decisions': {a.name: self.actions.get(a.name, 0) for a in Action},
            'undecided': self.undecided,
            'reasons': dict(sorted(self.reasons.items())),
            'collisions': len(self.collisions),
            'near_misses': len(self.near_misses),
            'collided_with': sorted({c[0] for c in self.collisions}),
            'distance_travelled_m': round(_length(self.path), 2),
        }


def table(runs: list[RunRecord]) -> str:
    """A fixed-width comparison table, one column per run."""
    rows = [('proposals', [r.proposals for r in runs])]
    rows += [(f'decisions {a.name}', [r.actions.get(a.name, 0) if r.mode != 'bypass' else '-'
                                      for r in runs]) for a in Action]
    rows += [('undecided', [r.undecided if r.mode != 'bypass' else '-' for r in runs])]
    rows += [('collisions', [len(r.collisions) for r in runs]),
             ('near-misses', [len(r.near_misses) for r in runs]),
             ('distance travelled (m)', [f'{_length(r.path):.1f}' for r in runs])]
    header = f'{"":<24}' + ''.join(f'{r.mode:>14}' for r in runs)
    lines = [header, '-' * len(header)]
    lines += [f'{name:<24}' + ''.join(f'{str(v):>14}' for v in values) for name, values in rows]
    return '\n'.join(lines)


def write_report(out_dir: Path, runs: list[RunRecord], world: World, spec: OracleSpec,
                 settings: dict) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / 'summary.json'
    summary_path.write_text(json.dumps(
        {'settings': settings, 'runs': [r.summary() for r in runs]}, indent=2) + '\n')
    map_path = out_dir / 'map.png'
    draw_map(map_path, runs, world, spec)
    return summary_path, map_path


def draw_map(path: Path, runs: list[RunRecord], world: World, spec: OracleSpec) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    hidden = hidden_hazards(world, spec)
    fig, axes = plt.subplots(1, len(runs), figsize=(7.5 * len(runs), 6), squeeze=False)
    for ax, run in zip(axes[0], runs):
        for zone in spec.keep_out:
            ax.fill(*zone.polygon.exterior.xy, color='orange', alpha=0.35, hatch='//',
                    label='keep-out (spec)')
        for zone in spec.speed_zones:
            ax.fill(*zone.polygon.exterior.xy, color='gold', alpha=0.35,
                    label='speed zone (spec)')
        for obstacle_id, polygon in world.obstacles:
            if obstacle_id not in hidden:
                ax.fill(*polygon.exterior.xy, color='0.45', label='obstacle')
            else:
                ax.fill(*polygon.exterior.xy, color='0.8', edgecolor='crimson', linestyle='--',
                        label='hazard not in Oracle spec')
        for trajectory in run.blocked[:MAX_BLOCKED_DRAWN]:
            xs, ys = zip(*trajectory)
            ax.plot(xs, ys, color='crimson', alpha=0.25, linewidth=0.8,
                    label='blocked proposal')
        if run.path:
            xs, ys = zip(*run.path)
            ax.plot(xs, ys, color='royalblue', linewidth=2.0, label='executed path')
            ax.plot(xs[0], ys[0], 'o', color='royalblue', markersize=7, label='start')
        for _, x, y in run.near_misses:
            ax.plot(x, y, 'o', mfc='none', mec='darkorange', markersize=11, mew=2,
                    label='near-miss')
        for _, x, y in run.collisions:
            ax.plot(x, y, 'X', color='red', markersize=13, mec='black', label='collision')
        title = 'Gate on' if run.mode == 'gated' else 'Gate bypassed'
        ax.set_title(f'{title}: {len(run.collisions)} collisions, {len(run.near_misses)} '
                     f'near-misses, {run.actions.get("BLOCK", 0) + run.actions.get("FALLBACK", 0)}'
                     f' proposals stopped')
        ax.set_xlim(-0.3, 12.3)
        ax.set_ylim(-0.3, 8.3)
        ax.set_aspect('equal')
        ax.set_xlabel('x (m)')
        ax.set_ylabel('y (m)')
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), loc='upper left', fontsize=7, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def hidden_hazards(world: World, spec: OracleSpec) -> set[str]:
    """Ids of true obstacles the spec does not cover (by an obstacle, a keep-out zone, or by lying
    outside its geofence): what only an incident can teach the Oracle."""
    covered = shapely.union_all([z.polygon for z in spec.obstacles + spec.keep_out])
    if spec.geofence is not None:
        everything = shapely.box(*shapely.union_all(
            [spec.geofence] + [p for _, p in world.obstacles]).bounds)
        covered = shapely.union(covered, shapely.difference(everything, spec.geofence))
    return {obstacle_id for obstacle_id, polygon in world.obstacles
            if shapely.difference(polygon, covered).area > 1e-9}


def _length(path: list) -> float:
    return sum(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
               for (x1, y1), (x2, y2) in zip(path, path[1:]))
