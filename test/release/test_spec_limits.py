"""A signed spec is still bounded: its YAML is scanned against limits before it is composed, and
its size (zones, vertices, coverage cells) is checked before any geometry is built. These are the
attacks of operators' keys in the wrong hands, or of a refiner gone wrong."""
import math
import time

import numpy as np
import pytest
import yaml

import flywheel.yamldoc
from flywheel.errors import (OversizeBundleError, OversizeSpecError, SpecLimitError,
                             YamlAliasError)
from flywheel.kinematics import RobotState, constant_twist_rollout
from flywheel.oracle.oracle import Oracle
from flywheel.oracle.spec import MAX_EVIDENCE, SPEC_LIMITS, parse_spec
from flywheel.proposal import ProposalLimits, make_proposal
from flywheel.release.bundle import verify_bundle
from test.conftest import CONFIG
from test.release.conftest import NOW, craft, spec_bytes

DOC = yaml.safe_load((CONFIG / 'oracle_spec.yaml').read_text())


def refused(error, bundle, root):
    start = time.perf_counter()
    with pytest.raises(error) as caught:
        verify_bundle(bundle, root, NOW, 1)
    assert time.perf_counter() - start < 1.0
    return caught.value


def with_keep_out(vertices: int) -> bytes:
    """The shipped spec with one keep-out zone of ``vertices`` vertices (flow style, compact)."""
    ring = ','.join(f'[{i % 2},{i}]' for i in range(vertices))
    return spec_bytes(**{'keep_out:\n': f'keep_out:\n  - {{id: huge, polygon: [{ring}]}}\n'})


def test_a_signed_yaml_alias_bomb(operators, root):
    """33 KB that expands to 9M cells: refused at its first anchor, before composing."""
    levels = ['a0: &a0 [' + ','.join(['1'] * 9) + ']']
    levels += [f'a{i}: &a{i} [' + ','.join([f'*a{i - 1}'] * 9) + ']' for i in range(1, 8)]
    bomb = spec_bytes() + ('\n'.join(levels) + '\n').encode()
    error = refused(OversizeSpecError, craft(operators, bomb), root)
    assert isinstance(error.__cause__, YamlAliasError)


def test_a_signed_keep_out_zone_of_a_million_vertices(operators, root):
    """It blocked governance for 36-51 s; now its size alone refuses it, unread."""
    refused(OversizeBundleError, craft(operators, with_keep_out(10**6)), root)


def test_a_signed_spec_with_more_yaml_nodes_than_allowed(operators, root):
    error = refused(OversizeSpecError, craft(operators, with_keep_out(100_000)), root)
    assert 'YAML nodes' in str(error)


def test_a_signed_polygon_with_more_vertices_than_allowed(operators, root):
    error = refused(OversizeSpecError, craft(operators, with_keep_out(2000)), root)
    assert isinstance(error.__cause__, SpecLimitError)
    assert error.__cause__.field == 'keep_out[0].polygon'


def test_a_signed_spec_nested_100000_deep(operators, root):
    """libyaml's composer recurses in C: composing this crashes the process (SIGSEGV)."""
    deep = spec_bytes() + b'x: ' + b'[' * 100_000 + b']' * 100_000 + b'\n'
    assert 'nested deeper' in str(refused(OversizeSpecError, craft(operators, deep), root))


def test_a_million_vertex_polygon_is_refused_before_shapely_builds_it(monkeypatch):
    built = []
    real = flywheel.yamldoc.Polygon
    monkeypatch.setattr(flywheel.yamldoc, 'Polygon', lambda points: built.append(len(points))
                        or real(points))
    doc = {**DOC, 'keep_out': [{'id': 'huge', 'polygon': [[i % 2, i] for i in range(10**6)]}]}
    start = time.perf_counter()
    with pytest.raises(SpecLimitError) as caught:
        parse_spec(doc)
    assert time.perf_counter() - start < 1.0
    assert caught.value.field == 'keep_out[0].polygon' and built == []


@pytest.mark.parametrize('key, value, field', [
    ('obstacles', [{'id': f'b{i}', 'polygon': [[0, 0], [1, 0], [1, 1]]}
                   for i in range(SPEC_LIMITS.max_zones + 1)], 'obstacles+keep_out'),
    ('speed_zones', [{'id': f's{i}', 'max_speed': 1, 'polygon': [[0, 0], [1, 0], [1, 1]]}
                     for i in range(SPEC_LIMITS.max_speed_zones + 1)], 'speed_zones'),
    ('obstacles', [{'id': f'b{i}', 'polygon': [[0, j] for j in range(1000)]}
                   for i in range(17)], 'spec'),
])
def test_too_many_zones_or_vertices(key, value, field):
    with pytest.raises(SpecLimitError) as caught:
        parse_spec({**DOC, key: value})
    assert caught.value.field == field


def test_too_many_coverage_cells():
    coverage = {**DOC['coverage'], 'cells': [[1] * 128] * 129}
    with pytest.raises(SpecLimitError, match='16512 cells > 16384'):
        parse_spec({**DOC, 'coverage': coverage})


def worst_zones(layout: str) -> list[dict]:
    """As many zones as the limits allow, of as many vertices as the vertex total allows, all
    where a proposal from (2, 6) heading +x at 0.5 m/s for 5 s is scored: across its route
    (every zone touched), beside it (every zone within the clearance horizon), or as thin
    zones crossing the route and one another at every angle."""
    count = SPEC_LIMITS.max_zones
    sides = (SPEC_LIMITS.max_total_vertices - 2 * SPEC_LIMITS.max_vertices) // count
    zones = []
    for i in range(count):
        x = 2.0 + 2.5 * (i % 64) / 64
        if layout == 'crossing':
            a = math.pi * (i + 0.5) / count
            d = np.array([math.cos(a), math.sin(a)])
            n = np.array([-d[1], d[0]]) * 0.005
            t = np.linspace(-3.0, 3.0, sides // 2)[:, None]
            side = np.array([x, 6.0]) + t * d
            ring = np.concatenate([side - n, (side + n)[::-1]])
        else:
            a = np.linspace(0.0, 2.0 * math.pi, sides, endpoint=False)
            y = 6.0 if layout == 'across' else 6.7
            ring = np.c_[x + 0.2 * np.cos(a), y + 0.2 * np.sin(a)]
        zones.append({'id': f'z{i}', 'polygon': ring.round(6).tolist()})
    return zones


@pytest.mark.parametrize('layout', ['across', 'beside', 'crossing'])
def test_scoring_the_worst_spec_inside_the_limits_stays_inside_the_budget(layout):
    """The Oracle scored such a spec in 100-370 ms (over the Gate's 0.25 s verdict_timeout);
    bench/release_limits.py measures it (budget 10 ms at p99). CPU time, with a margin for a
    loaded machine: this guards against the work growing with the zones again."""
    zones = worst_zones(layout)
    spec = parse_spec({**DOC, 'obstacles': zones[:-1], 'keep_out': zones[-1:],
                       'max_evidence': MAX_EVIDENCE})
    oracle = Oracle(spec, ProposalLimits())
    t_ns = (np.arange(50) * 0.1e9).astype(np.int64)
    states = constant_twist_rollout(RobotState(2.0, 6.0, 0.0), 0.5, 0.0, 50, 0.1)
    cpu = []
    for seq in range(7):
        p = make_proposal(f'proposer/{seq}', 'proposer', seq, 'map', 0, t_ns, states, (0.5, 0.0))
        start = time.thread_time()
        s = oracle.evaluate(p)
        cpu.append(time.thread_time() - start)
    assert (s.collision_risk == 1.0) == (layout != 'beside')
    assert float(np.median(cpu)) < 0.025
