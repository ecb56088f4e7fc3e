"""The planner plugin interface: anything with ``plan(state, shortcut=False) -> Plan``.

A plugin is named ``module:Class`` (the Proposer's ``planner`` parameter) and built with the
planner's parameter mapping. ``shortcut`` is the fault-injection hook: a planner that can cut a
corner of its route does so when asked; others ignore it.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import MISSING, dataclass
from typing import Any, Protocol

import numpy as np

from flywheel.errors import PlannerLoadError
from flywheel.kinematics import RobotState


@dataclass(frozen=True)
class Plan:
    """A planned trajectory: times (s) from now, (N, 5) states [x, y, yaw, v, w], the command."""

    times: np.ndarray
    states: np.ndarray
    command: tuple[float, float]


class Planner(Protocol):
    def plan(self, state: RobotState, shortcut: bool = False) -> Plan: ...


def planner_class(spec: str) -> type:
    """Import ``module:Class``; PlannerLoadError names what failed."""
    module_name, sep, class_name = spec.partition(':')
    if not sep or not module_name or not class_name:
        raise PlannerLoadError(f'planner {spec!r}: expected "module:Class"')
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise PlannerLoadError(f'planner {spec!r}: {exc}') from exc
    if not callable(getattr(cls, 'plan', None)):
        raise PlannerLoadError(f'planner {spec!r}: has no plan(state) method')
    return cls


def planner_parameters(cls: type) -> dict[str, Any]:
    """The keyword parameters a planner class takes, with their defaults (MISSING if required)."""
    params = {}
    for name, p in inspect.signature(cls).parameters.items():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[name] = MISSING if p.default is p.empty else p.default
    return params


def load_planner(spec: str, params: dict[str, Any]) -> Planner:
    """Build the plugin ``module:Class`` with ``params``."""
    cls = planner_class(spec)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise PlannerLoadError(f'planner {spec!r}: bad parameters: {exc}') from exc
