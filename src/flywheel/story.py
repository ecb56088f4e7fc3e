"""The flywheel story (`flywheel demo --story`), its pure part: the world with a hazard the first
Oracle release does not know, the staging that makes the fallible planner meet it, and the
timeline and figures of a run. No rclpy here: the recorder node feeds a `Timeline`, the driver
(flywheel/cli/story.py) plays the operator.

The hazard is a pallet left at an angle in the west aisle, beside the line the Proposer's seeded
first fault (a SHORTCUT from its start pose straight to the goal after next) drives along: the
robot passes it a few centimetres off, a near-miss, never a contact (in the embedded sim a frontal
contact pins the robot for good, which would end the story rather than tell it). Release 1.0.0
knows nothing of it, so its Gate approves that pass. The refiner's zone around the incident
blocks it from the next release on; the nominal route keeps clear of both.

`replay` judges the proposals the Proposer published in the PASS_WINDOW_S before the hazard's
first incident under each release, offline, exactly as the robot decides (the Oracle's scoring and
the Gate's policy): the same pass, approved by 1.0.0 and blocked by the refined release, is what
shows the fix, since the staged pass does not come again within the run.

Invariants of `figures`: times are seconds since the Proposer started; "before" is the Proposer's
start to the rollout reaching full, "after" from then to the end of the run; incidents count only
those with the hazard's object id as hazard incidents; Proposer restarts are the distinct
proposal epochs the Gate decided on, less one (a restarted Proposer numbers from a new epoch).
"""
from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

HAZARD_ID = 'fallen_pallet'
# Not in any Oracle spec: 0.55 x 0.30 m, turned along the start pose's heading, its west face
# 0.25 m off that line (the robot's side passes 5 cm from it).
HAZARD = ((3.594, 5.162), (3.426, 4.638), (3.712, 4.547), (3.88, 5.07))
START = (3.6, 6.0, -1.881)           # x, y, yaw: on the west aisle, facing the route's goal A
# The package's route loop (config/flywheel.yaml), entered at its north-west corner, so its goal
# after next (the SHORTCUT's target) is straight ahead of the start pose.
ROUTE = (2.0, 7.0, 2.0, 1.0, 10.5, 1.0, 10.5, 7.0)
FAULT_KINDS = ('SHORTCUT',)
FAULT_RATE = 0.01
FAULT_MIN_DURATION, FAULT_MAX_DURATION = 3.0, 10.0
# random.Random(206) starts a SHORTCUT episode at the first proposal (rate 0.01) lasting 9.8 s:
# the pass takes about 3 s of motion, so the Gate may take several seconds to hear the Proposer.
FAULT_SEED = 206
# The operator's rollout plan for the demo: short stages, the package's rules otherwise relaxed
# for a single robot on a shared machine (evaluation time on 2 cores under the whole graph).
STORY_PLAN = {
    'stages': ['shadow', 'canary', 'full'],
    'canary_robots': 1,
    'rules': {stage: {'min_duration_s': 5.0, 'min_samples': 40, 'max_duration_s': 120.0,
                      'max_disagreement_rate': 0.2, 'max_false_stop_rate': 0.2,
                      'max_latency_p99_s': 0.5, 'max_errors': 10}
              for stage in ('shadow', 'canary')},
}
FIRST_PLAN = {'stages': ['full']}     # release 1 is the robot's first: active at once


def story_world(doc: dict) -> dict:
    """The package's world (a parsed world.yaml) with the hazard added and the story's start."""
    world = copy.deepcopy(doc)
    if any(o.get('id') == HAZARD_ID for o in world['obstacles']):
        raise ValueError(f'obstacles: the world already holds {HAZARD_ID!r}')
    world['obstacles'].append({'id': HAZARD_ID, 'polygon': [list(p) for p in HAZARD]})
    world['start'] = list(START)
    return world


@dataclass(frozen=True)
class Entry:
    t: float                 # s since the Proposer started (negative: before it)
    kind: str                # incident, escalation, release, stage, operator, note
    text: str


@dataclass
class Timeline:
    """What happened, in order of arrival, with the counts the figures need."""

    entries: list[Entry] = field(default_factory=list)
    incidents: list[tuple[float, str, str, float, float]] = field(default_factory=list)
    escalations: list[float] = field(default_factory=list)
    proposer_epochs: set[int] = field(default_factory=set)
    full_t: float | None = None
    failed: str = ''

    def shift(self, by: float) -> None:
        """Subtract ``by`` seconds from every time recorded (a new origin)."""
        self.entries = [Entry(round(e.t - by, 3), e.kind, e.text) for e in self.entries]
        self.incidents = [(t - by, *rest) for t, *rest in self.incidents]
        self.escalations = [t - by for t in self.escalations]
        if self.full_t is not None:
            self.full_t -= by

    def add(self, t: float, kind: str, text: str) -> None:
        self.entries.append(Entry(round(t, 3), kind, text))

    def incident(self, t: float, severity: str, object_id: str, x: float, y: float) -> None:
        self.incidents.append((t, severity, object_id, x, y))
        self.add(t, 'incident', f'{severity} with {object_id} at ({x:.2f}, {y:.2f})')

    def escalation(self, t: float, proposal_id: str) -> None:
        """The first escalation and then every tenth are entries; all are counted."""
        self.escalations.append(t)
        n = len(self.escalations)
        if n == 1 or n % 10 == 0:
            self.add(t, 'escalation', f'escalation {n} (proposal {proposal_id}): the Gate held '
                     'the robot and asked the verifier')

    def hazard_incidents(self) -> list[tuple]:
        return [i for i in self.incidents if i[2] == HAZARD_ID]


def figures(timeline: Timeline, end_t: float, evidence: dict | None, proposer_pid_start: int,
            proposer_pid_end: int | None) -> dict:
    """The story's numbers from its timeline (see the module's invariants)."""
    hazard = timeline.hazard_incidents()
    full = timeline.full_t
    first = hazard[0][0] if hazard else None
    before_s = full if full is not None else end_t
    after_s = end_t - full if full is not None else 0.0

    n_before = sum(1 for i in hazard if 0.0 <= i[0] < before_s)
    n_after = sum(1 for i in hazard if full is not None and i[0] >= full)
    rate_before = round(60.0 * n_before / before_s, 2) if before_s > 0 else None
    rate_after = round(60.0 * n_after / after_s, 2) if after_s > 0 else None
    evidence = evidence or {}
    basin = evidence.get('basin', {})
    return {
        'first_hazard_incident_s': round(first, 2) if first is not None else None,
        'full_rollout_s': round(full, 2) if full is not None else None,
        'first_incident_to_full_s': (round(full - first, 2)
                                     if full is not None and first is not None else None),
        'target_first_incident_to_full_s': 60.0,
        'hazard_incidents_before': n_before, 'before_window_s': round(before_s, 2),
        'hazard_incidents_per_min_before': rate_before,
        'hazard_incidents_after': n_after, 'after_window_s': round(after_s, 2),
        'hazard_incidents_per_min_after': rate_after,
        'incidents_total': len(timeline.incidents),
        'escalations': len(timeline.escalations),
        'basin_kept': basin.get('kept'), 'basin_size': basin.get('size'),
        'basin_first_version': basin.get('first_version'),
        'refined_release': evidence.get('candidate_version'),
        'flaws_found': evidence.get('flaws', {}).get('total'),
        'flaws_blocked': evidence.get('flaws', {}).get('blocked'),
        'incidents_blocked': evidence.get('incidents', {}).get('blocked'),
        'corrections': evidence.get('corrections', {}).get('by_kind'),
        'proposer_pid_start': proposer_pid_start, 'proposer_pid_end': proposer_pid_end,
        'proposer_restarts': max(0, len(timeline.proposer_epochs) - 1),
        'proposer_epochs_seen': len(timeline.proposer_epochs),
    }


PASS_WINDOW_S = 3.0     # the proposals this long before the first hazard incident: the pass


def replay(proposals: Iterable, judges: dict) -> dict:
    """How each release (``judges``: version -> flywheel.agents.judge.Judge) decides the
    proposals of the pass, as the robot would: {'proposals': n, 'approved_by_<version>': k}."""
    from flywheel.release.regression import SUITE_PROPOSER
    # the Judge scores cases under the suite's proposer id; scoring does not depend on it
    cases = [replace(p, proposer_id=SUITE_PROPOSER) for p in proposals]
    out = {'proposals': len(cases)}
    for version, judge in judges.items():
        out[f'approved_by_{version}'] = sum(1 for c in cases if judge.action(c).approves)
    return out


def write_story(out_dir: Path, timeline: Timeline, numbers: dict, settings: dict) -> tuple[Path,
                                                                                             Path]:
    """story.json (everything) and story.md (the timeline and the figures, for people)."""
    doc = {'settings': settings, 'figures': numbers, 'failed': timeline.failed,
           'timeline': [asdict(e) for e in timeline.entries],
           'incidents': [dict(zip(('t', 'severity', 'object_id', 'x', 'y'), i))
                         for i in timeline.incidents]}
    as_json = out_dir / 'story.json'
    as_json.write_text(json.dumps(doc, indent=1) + '\n')
    lines = ['# The flywheel story', '',
             f'Hazard `{HAZARD_ID}` is in the world and in no Oracle release before the '
             'refiner\'s. Times are seconds since the Proposer started.', '',
             '## Figures', '', '| figure | value |', '|---|---|']
    lines += [f'| {k} | {v} |' for k, v in numbers.items()]
    lines += ['', '## Timeline', '', '| t (s) | what | |', '|---:|---|---|']
    lines += [f'| {e.t:.1f} | {e.kind} | {e.text} |' for e in timeline.entries]
    if timeline.failed:
        lines += ['', f'**The story did not complete:** {timeline.failed}']
    as_md = out_dir / 'story.md'
    as_md.write_text('\n'.join(lines) + '\n')
    return as_json, as_md
