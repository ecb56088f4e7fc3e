"""A malformed Oracle spec is refused with an error naming the field."""
import copy

import pytest
import yaml

from flywheel.errors import SpecError
from flywheel.oracle.spec import load_spec, parse_spec
from test.conftest import CONFIG

DOC = yaml.safe_load((CONFIG / 'oracle_spec.yaml').read_text())


def edited(path, value):
    doc = copy.deepcopy(DOC)
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


def test_the_shipped_spec_loads(spec):
    assert spec.version == '1.0.0'
    assert [z.zone_id for z in spec.obstacles] == ['shelf_a', 'shelf_b', 'pillar']
    assert spec.coverage.cells.shape == (8, 12)
    # the hold covers the Gate's (command_timeout 0.3 s + one 0.02 s tick)
    assert spec.command_hold >= 0.32
    assert (spec.anchor_tolerance, spec.anchor_yaw_tolerance, spec.sweep_tolerance) == (
        0.05, 0.05, 0.01)


def test_what_a_verdict_covers_defaults_when_absent():
    doc = {k: v for k, v in DOC.items()
           if k not in {'command_hold', 'anchor_tolerance', 'anchor_yaw_tolerance',
                        'sweep_tolerance'}}
    spec = parse_spec(doc)
    assert (spec.command_hold, spec.anchor_tolerance, spec.anchor_yaw_tolerance,
            spec.sweep_tolerance) == (0.4, 0.05, 0.05, 0.01)


@pytest.mark.parametrize('path, value, field', [
    (('footprint',), KeyError, 'spec.footprint'),
    (('footprint',), [[0, 0], [1, 0]], 'footprint'),
    (('footprint',), [[1, 1], [2, 1], [2, 2], [1, 2]], 'footprint'),
    (('footprint',), [[0, 0], [1, 1], [1, 0], [0, 1]], 'footprint'),
    (('obstacles', 0, 'polygon', 0, 0), 'one', 'obstacles[0].polygon[0][0]'),
    (('obstacles', 1, 'id'), 'shelf_a', 'obstacles[1].id'),
    (('keep_out', 0, 'polygon'), 'nope', 'keep_out[0].polygon'),
    (('speed_zones', 0, 'max_speed'), -1.0, 'speed_zones[0].max_speed'),
    (('limits', 'max_speed'), 0.0, 'limits.max_speed'),
    (('limits', 'max_speed'), float('nan'), 'limits.max_speed'),
    (('limits', 'max_sped'), 1.0, 'limits.max_sped'),
    (('limits', 'clearance_margin'), KeyError, 'limits.clearance_margin'),
    (('uncertainty', 'threshold'), 1.5, 'uncertainty.threshold'),
    (('coverage', 'cells', 2), [1, 1], 'coverage.cells[2]'),
    (('coverage', 'cells', 0, 0), 2.0, 'coverage.cells[0][0]'),
    (('coverage', 'resolution'), 0, 'coverage.resolution'),
    (('version',), '', 'version'),
    (('max_evidence',), 0, 'max_evidence'),
    (('max_evidence',), 65, 'max_evidence'),        # more than one SafetySignals message holds
    (('unexpected',), 1, 'spec.unexpected'),
    (('command_hold',), 0.0, 'command_hold'),
    (('command_hold',), 'long', 'command_hold'),
    (('anchor_tolerance',), -0.01, 'anchor_tolerance'),
    (('anchor_yaw_tolerance',), 4.0, 'anchor_yaw_tolerance'),
    (('sweep_tolerance',), 0.0, 'sweep_tolerance'),
    (('max_sweep_yaw_step',), 0.35, 'spec.max_sweep_yaw_step'),
])
def test_malformed_spec_names_the_field(path, value, field):
    with pytest.raises(SpecError) as err:
        parse_spec(edited(path, value))
    assert err.value.field == field


def test_a_spec_that_is_not_a_mapping():
    with pytest.raises(SpecError, match='expected a mapping'):
        parse_spec(['not', 'a', 'spec'])


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(SpecError, match='cannot read'):
        load_spec(tmp_path / 'missing.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('version: [1,\n')
    with pytest.raises(SpecError, match='not valid YAML'):
        load_spec(bad)
