"""Reading YAML documents into validated values, with errors that name the field and the value.

Every configuration document (Oracle spec, risk policy, world) is parsed through these helpers, so
a typo in a key or a bad number is a `SpecError` at start-up, never a silently ignored setting.

Before a document is composed, its event stream is scanned once (linear, libyaml's parser, no
recursion) against `YamlLimits`: total nodes, nesting depth, scalar length, one document, no
anchors or aliases (an alias bomb multiplies a small document a millionfold), core tags only. Only
a document inside the limits is built, so building it is bounded too (libyaml's composer recurses
in C: a document nested 100,000 deep crashes the process).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry import Polygon

from flywheel.errors import SpecError, SpecLimitError, YamlAliasError


# libyaml's safe loader when PyYAML has it (about 5x faster on a 1,000-polygon spec).
_SAFE_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
_NO_ALIASES = ('anchors and aliases are refused (write each value out; yaml.dump writes an '
               'anchor for an object it meets twice)')
_CORE_TAGS = frozenset(f'tag:yaml.org,2002:{t}' for t in ('str', 'int', 'float', 'bool', 'null',
                                                          'seq', 'map'))


@dataclass(frozen=True)
class YamlLimits:
    """What a YAML document may hold, checked on its event stream before it is built."""

    max_nodes: int = 100_000        # scalars, sequences and mappings (keys count)
    max_depth: int = 32             # nested sequences/mappings
    max_scalar_chars: int = 4096    # also keeps int() of a digit string cheap


YAML_LIMITS = YamlLimits()


def load_yaml(path: str | Path, limits: YamlLimits = YAML_LIMITS) -> dict:
    """The mapping at the top of a YAML file."""
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as exc:
        raise SpecError(str(path), f'cannot read: {exc.strerror or exc}') from exc
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), f'not UTF-8 text: {exc}') from exc
    return parse_yaml(text, str(path), limits)


def parse_yaml(text: str, where: str, limits: YamlLimits = YAML_LIMITS) -> dict:
    """The mapping at the top of a YAML document (safe loading only, within ``limits``)."""
    check_yaml(text, where, limits)
    try:
        doc = yaml.load(text, Loader=_SAFE_LOADER)
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise SpecError(where, f'not valid YAML: {exc}') from exc
    return mapping(doc, where)


def check_yaml(text: str, where: str, limits: YamlLimits = YAML_LIMITS) -> None:
    """Raise SpecLimitError (YamlAliasError for anchors and aliases) unless the document is
    inside ``limits``; one linear pass over its events, stopping at the first excess."""
    nodes = depth = documents = 0
    try:
        for event in yaml.parse(text, Loader=_SAFE_LOADER):
            kind = type(event)
            if kind is yaml.AliasEvent:
                raise YamlAliasError(where, f'alias *{event.anchor} at line {_line(event)}: '
                                     f'{_NO_ALIASES}')
            if kind in (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent):
                if event.anchor is not None:
                    raise YamlAliasError(where, f'anchor &{event.anchor} at line {_line(event)}: '
                                         f'{_NO_ALIASES}')
                if event.tag is not None and event.tag not in _CORE_TAGS:
                    raise SpecError(where, f'tag {_show(event.tag)} at line {_line(event)}: '
                                    'only the core YAML tags are accepted')
                nodes += 1
                if nodes > limits.max_nodes:
                    raise SpecLimitError(where, f'more than {limits.max_nodes} YAML nodes '
                                         f'(at line {_line(event)})')
                if kind is yaml.ScalarEvent:
                    if len(event.value) > limits.max_scalar_chars:
                        raise SpecLimitError(where, f'a {len(event.value)}-character scalar at '
                                             f'line {_line(event)} > {limits.max_scalar_chars}')
                else:
                    depth += 1
                    if depth > limits.max_depth:
                        raise SpecLimitError(where, f'nested deeper than {limits.max_depth} '
                                             f'(at line {_line(event)})')
            elif kind in (yaml.SequenceEndEvent, yaml.MappingEndEvent):
                depth -= 1
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise SpecError(where, f'a second YAML document at line {_line(event)}')
    except yaml.YAMLError as exc:
        raise SpecError(where, f'not valid YAML: {exc}') from exc


def _line(event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def mapping(value: Any, field: str, allowed: set[str] | None = None,
            required: set[str] = frozenset()) -> dict:
    """A dict with string keys; unknown or missing keys are errors."""
    if not isinstance(value, dict):
        raise SpecError(field, f'expected a mapping, got {_show(value)}')
    for key in value:
        if not isinstance(key, str):
            raise SpecError(field, f'keys must be strings, got {key!r}')
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise SpecError(f'{field}.{unknown[0]}', f'unknown key (allowed: {sorted(allowed)})')
    missing = sorted(required - set(value))
    if missing:
        raise SpecError(f'{field}.{missing[0]}', 'required key is missing')
    return value


def sequence(value: Any, field: str) -> list:
    if not isinstance(value, list):
        raise SpecError(field, f'expected a list, got {_show(value)}')
    return value


def number(value: Any, field: str, *, lo: float = -math.inf, hi: float = math.inf,
           lo_open: bool = False) -> float:
    """A finite real number in [lo, hi] (or (lo, hi] with lo_open)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, f'expected a number, got {_show(value)}')
    value = float(value)
    if not math.isfinite(value):
        raise SpecError(field, f'must be finite, got {value}')
    if value < lo or (lo_open and value == lo) or value > hi:
        bracket = '(' if lo_open else '['
        raise SpecError(field, f'must be in {bracket}{lo}, {hi}], got {value}')
    return value


def integer(value: Any, field: str, *, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f'expected an integer, got {_show(value)}')
    if not lo <= value <= hi:
        raise SpecError(field, f'must be in [{lo}, {hi}], got {value}')
    return value


def text(value: Any, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise SpecError(field, f'expected a non-empty string, got {_show(value)}')
    return value


MAX_VERTICES = 1024


def polygon(value: Any, field: str, max_vertices: int = MAX_VERTICES) -> Polygon:
    """A valid polygon with positive area from a list of 3..max_vertices [x, y] vertices."""
    vertices = sequence(value, field)
    if len(vertices) < 3:
        raise SpecError(field, f'need >= 3 vertices, got {len(vertices)}')
    if len(vertices) > max_vertices:
        raise SpecLimitError(field, f'{len(vertices)} vertices > {max_vertices}')
    points = []
    for i, vertex in enumerate(vertices):
        pair = sequence(vertex, f'{field}[{i}]')
        if len(pair) != 2:
            raise SpecError(f'{field}[{i}]', f'expected [x, y], got {_show(vertex)}')
        points.append((number(pair[0], f'{field}[{i}][0]'), number(pair[1], f'{field}[{i}][1]')))
    shape = Polygon(points)
    if not shape.is_valid:
        raise SpecError(field, f'invalid polygon ({shapely.is_valid_reason(shape)})')
    if shape.area <= 0.0:
        raise SpecError(field, 'polygon has zero area')
    return shape


def named_polygons(value: Any, field: str, extra: dict[str, dict] | None = None) -> list[dict]:
    """A list of ``{id, polygon, ...}`` entries with unique ids; ``extra`` names numeric fields
    each entry must carry, with their number() bounds."""
    extra = extra or {}
    entries, seen = [], set()
    for i, entry in enumerate(sequence(value, field)):
        where = f'{field}[{i}]'
        entry = mapping(entry, where, allowed={'id', 'polygon', *extra},
                        required={'id', 'polygon', *extra})
        ident = text(entry['id'], f'{where}.id')
        if ident in seen:
            raise SpecError(f'{where}.id', f'duplicate id {ident!r}')
        seen.add(ident)
        parsed = {'id': ident, 'polygon': polygon(entry['polygon'], f'{where}.polygon')}
        for key, bounds in extra.items():
            parsed[key] = number(entry[key], f'{where}.{key}', **bounds)
        entries.append(parsed)
    return entries


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + '...'
