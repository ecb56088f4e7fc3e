"""YAML documents are scanned against limits before they are built: one test per attack."""
import time

import pytest

from flywheel.errors import SpecError, SpecLimitError, YamlAliasError
from flywheel.yamldoc import YamlLimits, check_yaml, parse_yaml


def refused(error, text: str, limits: YamlLimits = YamlLimits()):
    start = time.perf_counter()
    with pytest.raises(error) as caught:
        parse_yaml(text, 'doc.yaml', limits)
    assert time.perf_counter() - start < 1.0
    assert caught.value.field == 'doc.yaml'
    return caught.value


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: 9 ** levels cells from a few hundred bytes."""
    lines = ['a0: &a0 [' + ','.join(['lol'] * 9) + ']']
    lines += [f'a{i}: &a{i} [' + ','.join([f'*a{i - 1}'] * 9) + ']' for i in range(1, levels)]
    return '\n'.join(lines) + '\n'


def test_a_plain_document_loads():
    assert parse_yaml('a: [1, 2.5, "x", true, null]\nb: {c: !!str 1}\n', 'doc') == {
        'a': [1, 2.5, 'x', True, None], 'b': {'c': '1'}}


def test_an_alias_bomb_is_refused_at_its_first_anchor():
    assert '&a0 at line 1' in str(refused(YamlAliasError, alias_bomb()))


def test_an_alias_is_refused():
    assert 'alias *x at line 2' in str(refused(YamlAliasError, 'a: 1\nb: *x\n'))


def test_an_anchor_alone_is_refused():
    refused(YamlAliasError, 'a: &x 1\n')


def test_nesting_a_million_deep_is_refused_without_recursion():
    """Composed, 100,000 levels crash the process inside libyaml's composer (SIGSEGV)."""
    assert 'nested deeper than 32' in str(refused(SpecLimitError, '[' * 10**6))


def test_more_nodes_than_allowed():
    text = 'a: [' + '1,' * 1000 + ']\n'
    assert 'more than 500 YAML nodes' in str(refused(SpecLimitError, text,
                                                     YamlLimits(max_nodes=500)))


def test_a_scalar_longer_than_allowed():
    """Also keeps int() of a digit string cheap: 150k digits are refused unconverted."""
    assert '150000-character scalar' in str(refused(SpecLimitError, 'a: ' + '9' * 150_000))


def test_a_python_tag_is_refused():
    refused(SpecError, 'a: !!python/object/apply:os.system ["true"]\n')


def test_a_custom_tag_is_refused():
    refused(SpecError, 'a: !thing 1\n')


def test_a_second_document_is_refused():
    refused(SpecError, 'a: 1\n---\nb: 2\n')


def test_the_scan_stops_at_the_first_excess():
    """Work is bounded by the limit, not by the document: a huge flat list costs max_nodes."""
    text = '[' + '0,' * 2_000_000 + ']'
    start = time.perf_counter()
    with pytest.raises(SpecLimitError):
        check_yaml(text, 'doc', YamlLimits(max_nodes=1000))
    assert time.perf_counter() - start < 0.5
