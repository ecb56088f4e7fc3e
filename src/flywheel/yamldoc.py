"""Reading YAML documents into validated values, with errors that name the field and the value.

Every configuration document (Oracle spec, risk policy, world) is parsed through these helpers, so
a typo in a key or a bad number is a `SpecError` at start-up, never a silently ignored setting.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry import Polygon

from flywheel.errors import SpecError


# libyaml's safe loader when PyYAML has it (about 5x faster on a 1,000-polygon spec).
_SAFE_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)


def load_yaml(path: str | Path) -> dict:
    """The mapping at the top of a YAML file."""
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as exc:
        raise SpecError(str(path), f'cannot read: {exc.strerror or exc}') from exc
    return parse_yaml(text, str(path))


def parse_yaml(text: str, where: str) -> dict:
    """The mapping at the top of a YAML document (safe loading only)."""
    try:
        doc = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(where, f'not valid YAML: {exc}') from exc
    return mapping(doc, where)


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


def polygon(value: Any, field: str) -> Polygon:
    """A valid polygon with positive area from a list of at least 3 [x, y] vertices."""
    vertices = sequence(value, field)
    if len(vertices) < 3:
        raise SpecError(field, f'need >= 3 vertices, got {len(vertices)}')
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
