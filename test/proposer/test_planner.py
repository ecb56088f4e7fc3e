"""Loading planner plugins named `module:Class`."""
import pytest

from flywheel.errors import PlannerLoadError
from flywheel.proposer.planner import load_planner, planner_parameters
from flywheel.proposer.route import RoutePlanner


def test_loads_the_built_in_planner():
    planner = load_planner('flywheel.proposer.route:RoutePlanner', {'route': [[0, 0], [1, 1]]})
    assert isinstance(planner, RoutePlanner)


def test_lists_the_keyword_parameters_a_planner_takes():
    params = planner_parameters(RoutePlanner)
    assert params['cruise_speed'] == 0.6 and 'route' in params


@pytest.mark.parametrize('spec, text', [
    ('flywheel.proposer.route', 'module:Class'), ('no.such.module:Planner', 'no.such'),
    ('flywheel.proposer.route:Nope', 'Nope'), ('flywheel.proposer.faults:Fault', 'plan')])
def test_bad_plugin_names(spec, text):
    with pytest.raises(PlannerLoadError, match=text):
        load_planner(spec, {})


def test_bad_plugin_parameters():
    with pytest.raises(PlannerLoadError, match='bad parameters'):
        load_planner('flywheel.proposer.route:RoutePlanner', {'route': [[0, 0]]})
