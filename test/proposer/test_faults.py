import math

import numpy as np
import pytest

from flywheel.proposer.faults import Fault, FaultConfig, FaultInjector
from flywheel.proposer.planner import Plan


def plan():
    return Plan(np.arange(5) * 0.1, np.tile([1.0, 1.0, 0.0, 0.5, 0.1], (5, 1)), (0.5, 0.1))


def test_same_seed_same_faults():
    a, b = (FaultInjector(FaultConfig(rate=0.2, seed=3)) for _ in range(2))
    assert [a.current(t * 0.1) for t in range(300)] == [b.current(t * 0.1) for t in range(300)]


def test_episodes_last_between_min_and_max_duration():
    inj = FaultInjector(FaultConfig(rate=1.0, min_duration=1.0, max_duration=2.0, seed=1))
    first = inj.current(0.0)
    assert first is not None
    assert inj.current(0.99) is first
    assert 1.0 <= inj._until <= 2.0


def test_rate_zero_never_injects():
    inj = FaultInjector(FaultConfig(rate=0.0))
    assert all(inj.current(t) is None for t in range(100))


def test_overspeed_scales_speeds_and_command():
    out = FaultInjector(FaultConfig(overspeed_factor=2.0)).corrupt(plan(), Fault.OVERSPEED)
    assert out.command == (1.0, 0.1) and np.allclose(out.states[:, 3], 1.0)


def test_nan_lands_in_the_states():
    out = FaultInjector(FaultConfig(seed=2)).corrupt(plan(), Fault.NAN)
    assert np.isnan(out.states).sum() == 1 and math.isfinite(out.command[0])


@pytest.mark.parametrize('kwargs, text', [
    (dict(rate=1.5), 'rate'), (dict(min_duration=3.0, max_duration=1.0), 'durations'),
    (dict(kinds=('TELEPORT',)), 'TELEPORT')])
def test_bad_fault_config(kwargs, text):
    with pytest.raises(ValueError, match=text):
        FaultConfig(**kwargs)
