"""Config dataclasses are the schema of every node's parameters.

A field made with `setting()` carries its doc string, its bounds and whether it is a safety limit
that must not change while the node runs; `flywheel.ros.params` declares each one as a ROS
parameter with a matching descriptor, and config/flywheel.yaml mirrors them field for field.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any


def setting(default: Any, doc: str, *, lo: float = -math.inf, hi: float = math.inf,
            read_only: bool = False) -> Any:
    """A config field; ``read_only`` marks a safety limit that cannot be changed at run time."""
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=functools.partial(tuple, default), metadata={
            'doc': doc, 'lo': lo, 'hi': hi, 'read_only': read_only})
    return dataclasses.field(default=default, metadata={
        'doc': doc, 'lo': lo, 'hi': hi, 'read_only': read_only})


def check_bounds(config: Any) -> None:
    """Raise ValueError naming the first numeric field outside its declared bounds."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi = f.metadata.get('lo', -math.inf), f.metadata.get('hi', math.inf)
            if not (lo <= value <= hi) or (isinstance(value, float) and math.isnan(value)):
                raise ValueError(f'{f.name}: must be in [{lo}, {hi}], got {value!r}')
