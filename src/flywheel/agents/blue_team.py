"""Blue team: after a rollout, collateral damage found and raised as new work.

It compares the Gate's decisions before and after a release took over (ledger decision records,
split by the caller, e.g. by ``oracle_version``) and, given the golden basin and a judge of the
new release, the basin itself:

- FALSE_STOPS: the share of decisions stopped (BLOCK, FALLBACK) or held (ESCALATE) rose by more
  than ``max_stop_increase`` (the world did not change; the Oracle did);
- THROUGHPUT: the share approved fell by more than ``max_approval_drop``, or the mean commanded
  speed of approved commands by more than ``max_speed_drop`` of what it was;
- LOST_BASIN: golden basin members the new release no longer allows, counted cumulatively
  against the first release (flywheel.agents.basin): any loss beyond ``max_basin_loss`` is a
  regression.

Shares count only with ``min_decisions`` decisions on both sides. Pure: records in, report out.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from flywheel.agents.basin import Basin, allowed
from flywheel.agents.judge import Judge
from flywheel.agents.work import Signal, WorkItem
from flywheel.settings import check_bounds, setting

_APPROVED = {'ALLOW', 'DEGRADE'}
_STOPPED = {'BLOCK', 'FALLBACK', 'ESCALATE'}


@dataclass(frozen=True)
class BlueTeamConfig:
    max_stop_increase: float = setting(0.02, 'Rise of the share of decisions stopped or held '
                                       'that is a regression.', lo=0.0, hi=1.0)
    max_approval_drop: float = setting(0.02, 'Fall of the share approved that is a regression.',
                                       lo=0.0, hi=1.0)
    max_speed_drop: float = setting(0.1, 'Fall of the mean commanded speed, as a share of what '
                                    'it was, that is a regression.', lo=0.0, hi=1.0)
    max_basin_loss: float = setting(0.0, 'Share of the basin that may be lost (cumulative).',
                                    lo=0.0, hi=1.0)
    min_decisions: int = setting(50, 'Decisions each side needs before shares count.', lo=1,
                                 hi=10**9)

    def __post_init__(self):
        check_bounds(self)


@dataclass(frozen=True)
class DecisionStats:
    decisions: int
    approved: int
    stopped: int                  # BLOCK, FALLBACK, ESCALATE
    mean_speed: float             # mean |v| of the commands published (NaN: none)
    stopped_ids: tuple[str, ...] = ()

    @property
    def approval_share(self) -> float:
        return self.approved / self.decisions if self.decisions else math.nan

    @property
    def stop_share(self) -> float:
        return self.stopped / self.decisions if self.decisions else math.nan

    @classmethod
    def of(cls, records: Iterable[dict]) -> DecisionStats:
        decisions = approved = stopped = 0
        speeds, ids = [], []
        for r in records:
            if r.get('kind', 'decision') != 'decision':
                continue
            decisions += 1
            action = r.get('action')
            if action in _APPROVED:
                approved += 1
                command = r.get('command')
                if isinstance(command, (list, tuple)) and command and isinstance(
                        command[0], (int, float)) and math.isfinite(command[0]):
                    speeds.append(abs(float(command[0])))
            elif action in _STOPPED:
                stopped += 1
                ids.append(str(r.get('proposal_id', '')))
        return cls(decisions, approved, stopped,
                   sum(speeds) / len(speeds) if speeds else math.nan,
                   tuple(ids[-WorkItem.MAX_EVIDENCE:]))


@dataclass(frozen=True)
class BlueTeamReport:
    before: DecisionStats
    after: DecisionStats
    basin_kept_before: int | None
    basin_kept_after: int | None
    regressions: tuple[WorkItem, ...]
    basin: Basin | None = None          # accounted after the release, when one was given


class BlueTeam:
    def __init__(self, config: BlueTeamConfig | None = None):
        self.config = config if config is not None else BlueTeamConfig()

    def review(self, before: Iterable[dict], after: Iterable[dict], basin: Basin | None = None,
               judge: Judge | None = None, release: str = '') -> BlueTeamReport:
        """Regressions of the release (``release``: its version, for the work items) that
        ``after`` was decided with, against ``before``; the basin when ``judge`` judges it."""
        c = self.config
        old, new = DecisionStats.of(before), DecisionStats.of(after)
        where = f'release:{release}' if release else 'release'
        work = []
        if min(old.decisions, new.decisions) >= c.min_decisions:
            rise = new.stop_share - old.stop_share
            if rise > c.max_stop_increase:
                work.append(WorkItem(Signal.FALSE_STOPS, where, new.stop_share,
                                     old.stop_share + c.max_stop_increase, new.stopped,
                                     evidence=new.stopped_ids,
                                     detail=f'stopped or held {old.stop_share:.1%} -> '
                                     f'{new.stop_share:.1%} of decisions'))
            drop = old.approval_share - new.approval_share
            if drop > c.max_approval_drop:
                work.append(WorkItem(Signal.THROUGHPUT, where, new.approval_share,
                                     old.approval_share - c.max_approval_drop, new.approved,
                                     detail=f'approved {old.approval_share:.1%} -> '
                                     f'{new.approval_share:.1%} of decisions'))
            if math.isfinite(old.mean_speed) and math.isfinite(new.mean_speed) and \
                    old.mean_speed > 0 and \
                    (old.mean_speed - new.mean_speed) / old.mean_speed > c.max_speed_drop:
                work.append(WorkItem(Signal.THROUGHPUT, where, new.mean_speed,
                                     old.mean_speed * (1 - c.max_speed_drop), new.approved,
                                     detail=f'mean commanded speed {old.mean_speed:.3f} -> '
                                     f'{new.mean_speed:.3f} m/s'))
        accounted = None
        if basin is not None and judge is not None:
            accounted = basin.account(allowed(basin.cases, judge))
            fresh = sorted(accounted.lost - basin.lost)
            budget = math.floor(c.max_basin_loss * basin.size + 1e-9)
            if fresh and len(accounted.lost) > budget:
                work.append(WorkItem(Signal.LOST_BASIN, where, len(accounted.lost) / basin.size,
                                     budget / basin.size, len(fresh),
                                     evidence=tuple(fresh[:WorkItem.MAX_EVIDENCE]),
                                     detail=f'{len(fresh)} golden members lost by this release, '
                                     f'{len(accounted.lost)} of {basin.size} since '
                                     f'{basin.first_version}'))
        return BlueTeamReport(old, new, basin.kept if basin is not None else None,
                              accounted.kept if accounted is not None else None, tuple(work),
                              accounted)
