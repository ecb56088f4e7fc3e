"""The whole loop in plain Python (no ROS, synchronous verdicts): the shipped planner with fault
injection, the shipped Oracle spec and policy, the Gate, and the true world. Across seeds the
gated robot never collides, while the same faults ungated do hit things."""
import dataclasses
import math

import pytest
import yaml

from flywheel.enforcement.config import GateConfig
from flywheel.enforcement.gate import STOP, Gate, Now
from flywheel.enforcement.policy import load_policy
from flywheel.odometry import Odometry
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import load_spec
from flywheel.proposal import ProposalLimits
from flywheel.proposer.faults import FaultConfig, FaultInjector
from flywheel.proposer.proposer import Proposer
from flywheel.proposer.route import RoutePlanner
from flywheel.sim.sim import EventKind, Sim
from flywheel.sim.world import load_world
from test.conftest import CONFIG

SIM_DT_NS = 20_000_000      # 50 Hz world
PROPOSE_EVERY = 5           # 10 Hz proposals
EPOCH = 1_700_000_000 * 10**9   # the proposer's and the Oracle's start on the wall clock


def planner():
    params = dict(yaml.safe_load((CONFIG / 'flywheel.yaml').read_text())
                  ['/**/proposer']['ros__parameters']['planner'])
    flat = params.pop('route')
    return RoutePlanner(route=[flat[i:i + 2] for i in range(0, len(flat), 2)], **params)


def run(seed: int, gated: bool, seconds: float = 30.0,
        fault_rate: float = 0.02) -> tuple[int, float]:
    """(collisions, distance travelled) of one run."""
    sim = Sim(load_world(CONFIG / 'world.yaml'))
    faults = FaultInjector(FaultConfig(rate=fault_rate, seed=seed))
    proposer = Proposer('proposer', planner(), 'map', EPOCH, faults)
    oracle = Oracle(load_spec(CONFIG / 'oracle_spec.yaml'), ProposalLimits())
    gate = Gate(load_policy(CONFIG / 'policy.yaml'),
                GateConfig(accepted_oracle_versions=('1.0.0',), follow_governance=False))
    command, collisions = STOP, 0
    for k in range(int(seconds * 1e9 / SIM_DT_NS)):
        now_ns = k * SIM_DT_NS
        now = Now(ros_ns=now_ns, steady_ns=now_ns, wall_ns=EPOCH + 10**9 + now_ns)
        gate.on_odometry(Odometry(sim.state, now_ns, 'map'))
        if k % PROPOSE_EVERY == 0:
            proposal = proposer.propose(sim.state, now_ns)
            if not gated:
                command = proposal.command
            elif not gate.on_proposal(proposal, now):
                verdict = dataclasses.replace(oracle.evaluate(proposal), stamp_ns=now_ns,
                                              epoch=EPOCH, seq=k + 1)
                gate.on_signals(verdict, now)
        if gated:
            gate.tick(now)
            command = gate.command_at(now.steady_ns) or STOP
        v, w = command if all(map(math.isfinite, command)) else STOP
        collisions += sum(e.kind is EventKind.COLLISION for e in sim.step(v, w, 0.02, now_ns))
    path = sim.path
    return collisions, sum(math.dist(a, b) for a, b in zip(path, path[1:]))


SEEDS = range(12)


@pytest.mark.parametrize('seed', SEEDS)
def test_the_gated_robot_never_collides_and_still_moves(seed):
    collisions, travelled = run(seed, gated=True)
    assert collisions == 0
    assert travelled > 2.0


def test_the_same_faults_ungated_do_collide():
    assert sum(run(seed, gated=False)[0] for seed in SEEDS) >= len(SEEDS) // 2


def test_without_faults_the_gate_costs_no_progress():
    ungated = run(0, gated=False, seconds=20.0, fault_rate=0.0)
    gated = run(0, gated=True, seconds=20.0, fault_rate=0.0)
    assert gated[0] == ungated[0] == 0
    assert gated[1] >= 0.95 * ungated[1] > 8.0
