"""Every example parameters file in config/ loads: each node block names only fields of that
node's config dataclass (ROS would silently keep a misspelt key as an undeclared override and the
node would run on the default), with values of the field's type that the dataclass accepts, and
the files it points at exist. One file per deployment shape: embedded sim (flywheel.yaml), a real
robot behind Nav2 (real_robot.yaml), governed releases (governed.yaml)."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from flywheel.audit.config import AuditConfig
from flywheel.enforcement.config import GateConfig
from flywheel.oracle.config import OracleConfig
from flywheel.proposer.config import ProposerConfig
from flywheel.proposer.planner import load_planner, planner_class, planner_parameters
from flywheel.release.config import GovernanceConfig
from flywheel.settings import check_bounds
from flywheel.sim.config import SimConfig
from flywheel.verifier_config import VerifierNodeConfig
from flywheel.verify.verifier import VerifierConfig
from test.conftest import CONFIG

SCHEMAS = {'proposer': ProposerConfig, 'oracle': OracleConfig, 'gate': GateConfig,
           'governance': GovernanceConfig, 'audit': AuditConfig, 'sim': SimConfig,
           'verifier': VerifierNodeConfig}
# Blocks nested in a node's parameters with a schema of their own (prefix.field).
NESTED = {('verifier', 'check'): VerifierConfig}
PARAMS_FILES = ('flywheel.yaml', 'real_robot.yaml', 'governed.yaml')
PATH_FIELDS = ('spec_path', 'policy_path', 'world_path')

# what a YAML value must be for each field type, as rcl reads it (an integer is not a double)
_TYPES = {
    'str': lambda v: isinstance(v, str),
    'float': lambda v: isinstance(v, float),
    'int': lambda v: isinstance(v, int) and not isinstance(v, bool),
    'bool': lambda v: isinstance(v, bool),
    'tuple[str, ...]': lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    'tuple[float, ...]': lambda v: isinstance(v, list) and all(isinstance(x, float) for x in v),
}


def blocks(name: str) -> dict[str, dict]:
    """{node: its ros__parameters} of a params file keyed like flywheel.yaml (/**/node)."""
    doc = yaml.safe_load((CONFIG / name).read_text())
    out = {}
    for key, body in doc.items():
        assert key.startswith('/**/'), f'{name}: {key!r} must match any namespace (/**/node)'
        assert set(body) == {'ros__parameters'}, f'{name}: {key}: only ros__parameters'
        out[key[len('/**/'):]] = body['ros__parameters']
    return out


CASES = [(f, node) for f in PARAMS_FILES for node in blocks(f)]


@pytest.mark.parametrize('params_file,node', CASES, ids=[f'{f}:{n}' for f, n in CASES])
def test_every_parameter_is_a_field_with_a_valid_value(params_file, node):
    assert node in SCHEMAS, f'{params_file}: no node {node!r} (known: {", ".join(SCHEMAS)})'
    schema = SCHEMAS[node]
    values = dict(blocks(params_file)[node])
    planner = values.pop('planner', None) if node == 'proposer' else None
    for (owner, prefix), nested in NESTED.items():
        if owner == node and prefix in values:
            check_fields(params_file, f'{node}.{prefix}', nested, values.pop(prefix))
    config = check_fields(params_file, node, schema, values)
    for name in PATH_FIELDS:
        path = getattr(config, name, '')
        if path and not path.startswith('/'):
            assert (CONFIG / path).is_file(), f'{params_file}: {node}.{name}: no {path}'
    if node == 'proposer':
        assert config.mode in ('planner', 'adapter')
        if config.mode == 'planner':
            check_planner(config.planner_plugin, planner or {})


def check_fields(params_file: str, where: str, schema, values: dict):
    """The config ``values`` make: every key a field, every value of the field's type."""
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(values) - set(fields))
    assert not unknown, f'{params_file}: {where}: not a field of {schema.__name__}: {unknown}'
    for name, value in values.items():
        kind = str(fields[name].type)
        assert _TYPES[kind](value), f'{params_file}: {where}.{name}: {value!r} is not a {kind}'
    config = schema(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    check_bounds(config)
    return config


def check_planner(spec: str, params: dict) -> None:
    """The plugin's keyword arguments, as the proposer node passes them (a flat route)."""
    accepted = planner_parameters(planner_class(spec))
    assert not set(params) - set(accepted), sorted(set(params) - set(accepted))
    required = {name for name, default in accepted.items() if default is dataclasses.MISSING}
    assert required <= set(params), f'planner.{sorted(required - set(params))} must be given'
    kwargs = dict(params)
    if 'route' in kwargs:
        flat = kwargs['route']
        kwargs['route'] = [flat[i:i + 2] for i in range(0, len(flat), 2)]
    load_planner(spec, kwargs)


@pytest.mark.parametrize('node', sorted(SCHEMAS))
def test_the_full_parameters_file_names_every_field(node):
    """flywheel.yaml is the reference: every field of every node, so nothing runs on a default
    nobody can see."""
    block = blocks('flywheel.yaml')[node]
    missing = [f.name for f in dataclasses.fields(SCHEMAS[node]) if f.name not in block]
    for (owner, prefix), nested in NESTED.items():
        if owner == node:
            missing += [f'{prefix}.{f.name}' for f in dataclasses.fields(nested)
                        if f.name not in block.get(prefix, {})]
    assert not missing, f'flywheel.yaml: {node}: missing {missing}'


def test_the_deployment_shapes_say_what_they_are():
    sim, robot, governed = (blocks(f) for f in PARAMS_FILES)
    assert 'sim' in sim and 'sim' not in robot
    assert robot['proposer']['mode'] == 'adapter' and robot['gate']['stamped'] is True
    assert robot['proposer']['enable_stamped_cmd_vel'] is True
    assert robot['oracle']['follow_governance'] is False
    assert robot['gate']['follow_governance'] is False
    assert governed['oracle']['follow_governance'] is True
    assert governed['gate']['follow_governance'] is True
    assert 'governance' in governed


@pytest.mark.ros
@pytest.mark.parametrize('params_file', PARAMS_FILES)
def test_rcl_reads_each_file_into_the_configs(params_file):
    """The same through rcl's own YAML parser and the nodes' declare_config (types, ranges)."""
    rclpy = pytest.importorskip('rclpy')
    from rclpy.context import Context

    from flywheel.ros.params import declare_config
    context = Context()
    rclpy.init(context=context, args=['--ros-args', '--params-file',
                                      str(CONFIG / params_file)])
    try:
        for node_name, values in blocks(params_file).items():
            node = rclpy.create_node(node_name, context=context)
            try:
                config = declare_config(node, SCHEMAS[node_name], on_change=lambda _: None)
                for (owner, prefix), nested in NESTED.items():
                    if owner == node_name and prefix in values:
                        inner = declare_config(node, nested, prefix=f'{prefix}.')
                        for name, value in values[prefix].items():
                            got = getattr(inner, name)
                            assert (list(got) if isinstance(got, tuple) else got) == value, name
                for name, value in values.items():
                    if name == 'planner' or (node_name, name) in NESTED:
                        continue
                    got = getattr(config, name)
                    assert (list(got) if isinstance(got, tuple) else got) == value, name
            finally:
                node.destroy_node()
    finally:
        context.try_shutdown()
