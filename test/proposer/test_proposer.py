from flywheel.kinematics import RobotState
from flywheel.proposer.faults import Fault, FaultConfig, FaultInjector
from flywheel.proposer.proposer import Proposer
from flywheel.proposer.route import RoutePlanner

ROUTE = [[2.0, 1.0], [10.5, 1.0]]


def test_proposals_are_numbered_from_1_within_the_epoch_and_stamped():
    proposer = Proposer('proposer', RoutePlanner(ROUTE), 'map', epoch=77)
    a = proposer.propose(RobotState(1.5, 1.0, 0.0), 5_100_000_000)
    b = proposer.propose(RobotState(1.5, 1.0, 0.0), 5_200_000_000)
    assert (a.epoch, a.seq, b.seq) == (77, 1, 2)
    assert a.proposal_id == 'proposer/77/1' and a.stamp_ns == 5_100_000_000
    assert a.frame_id == 'map' and a.t_ns[1] == 100_000_000


def test_injected_faults_reach_the_proposal():
    faults = FaultInjector(FaultConfig(rate=1.0, kinds=('OVERSPEED',), overspeed_factor=3.0))
    proposer = Proposer('proposer', RoutePlanner(ROUTE), 'map', 0, faults)
    p = proposer.propose(RobotState(3.0, 1.0, 0.0, v=0.6), 0)
    assert proposer.last_fault is Fault.OVERSPEED and p.command[0] > 1.0
