"""Declares a config dataclass's fields as ROS parameters and builds the dataclass from them.

One adapter for every node: the descriptor carries the field's doc string, its range and whether it
is read-only (safety limits cannot be changed on a running node: ROS refuses, with a reason). A
writable field may change live only if the whole config still validates with the new value (else
the change is refused with the reason), and only if the node honours it (``on_change``); the audit
node records every change from /parameter_events.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, TypeVar

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)

from flywheel.settings import check_bounds

T = TypeVar('T')

_TYPES = {'str': ParameterType.PARAMETER_STRING, 'float': ParameterType.PARAMETER_DOUBLE,
          'int': ParameterType.PARAMETER_INTEGER, 'bool': ParameterType.PARAMETER_BOOL,
          'tuple[str, ...]': ParameterType.PARAMETER_STRING_ARRAY,
          'tuple[float, ...]': ParameterType.PARAMETER_DOUBLE_ARRAY}


def declare_config(node, cls: type[T], prefix: str = '',
                   on_change: Callable[[T], None] | None = None) -> T:
    """Declare every field of ``cls`` on ``node`` and return the config they hold.

    Raises rclpy's parameter exceptions for a wrong type or an out-of-range value, and ValueError
    from the dataclass's own checks. ``on_change(new_config)`` is called after a live change of a
    writable field was validated; without it, writable fields must not exist (they would report
    success and do nothing).
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = _TYPES[str(f.type)]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, tuple):
            default = list(default)
        descriptor = ParameterDescriptor(
            type=kind, description=f.metadata.get('doc', ''),
            read_only=f.metadata.get('read_only', False))
        lo, hi = f.metadata.get('lo', -math.inf), f.metadata.get('hi', math.inf)
        if kind == ParameterType.PARAMETER_DOUBLE and math.isfinite(lo) and math.isfinite(hi):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                                  to_value=float(hi))]
        if kind == ParameterType.PARAMETER_INTEGER and math.isfinite(lo) and math.isfinite(hi):
            descriptor.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi))]
        value = node.declare_parameter(prefix + f.name, default, descriptor).value
        values[f.name] = tuple(value) if isinstance(value, (list, tuple)) else value
    config = cls(**values)
    check_bounds(config)
    writable = [f.name for f in dataclasses.fields(cls) if not f.metadata.get('read_only')]
    if writable and on_change is None:
        raise ValueError(f'{cls.__name__}: writable parameters {writable} but nothing honours '
                         'a change (make them read_only or pass on_change)')
    if on_change is not None:
        node.add_on_set_parameters_callback(_validator(cls, prefix, node, on_change))
    return config


def _validator(cls, prefix: str, node, on_change):
    """Validate a live change against the whole config, then hand the new config over."""
    from rcl_interfaces.msg import SetParametersResult

    def check(parameters) -> SetParametersResult:
        names = {prefix + f.name: f.name for f in dataclasses.fields(cls)}
        changed = {names[p.name]: p.value for p in parameters if p.name in names}
        if not changed:
            return SetParametersResult(successful=True)
        current = {f.name: node.get_parameter(prefix + f.name).value
                   for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, (list, tuple)) else v
                  for k, v in {**current, **changed}.items()}
        try:
            config = cls(**values)
            check_bounds(config)
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        on_change(config)
        return SetParametersResult(successful=True)
    return check


def config_path(path: str) -> Path:
    """A config file path: absolute as given, relative to the package's config directory."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    return package_config_dir() / candidate


def package_config_dir() -> Path:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    try:
        return Path(get_package_share_directory('alignment_flywheel')) / 'config'
    except PackageNotFoundError:
        # running from a source checkout without an install: the repository's config/
        return Path(__file__).resolve().parents[3] / 'config'
