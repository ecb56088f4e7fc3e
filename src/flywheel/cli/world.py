"""`flywheel world export --sdf`: the embedded world as a Gazebo (gz sim) world, so a Gazebo run
has exactly the obstacles the embedded sim has (launch/gazebo.launch.py loads it). Offline: no
ROS, no Gazebo."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flywheel.errors import FlywheelError


def default_world() -> Path:
    """The package's config/world.yaml (installed share directory, else this checkout's)."""
    try:
        from ament_index_python.packages import (PackageNotFoundError,
                                                 get_package_share_directory)
        return Path(get_package_share_directory('alignment_flywheel')) / 'config' / 'world.yaml'
    except (ImportError, PackageNotFoundError):
        return Path(__file__).resolve().parents[3] / 'config' / 'world.yaml'


def cmd_world_export(args) -> int:
    from flywheel.sim.sdf import world_to_sdf
    from flywheel.sim.world import load_world
    world_path = Path(args.world) if args.world else default_world()
    text = world_to_sdf(load_world(world_path), height=args.height)
    if args.out in (None, '-'):
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    tmp = out.with_name(out.name + '.tmp')
    try:
        tmp.write_text(text, encoding='utf-8')
        os.replace(tmp, out)           # a reader (gz sim) never sees half a world
    except OSError as exc:
        raise FlywheelError(f'--out: cannot write {out}: {exc.strerror or exc}') from exc
    print(f'wrote {out}: {world_path.name} as SDF ({len(text)} bytes)', file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    world = sub.add_parser('world', help='the embedded world (config/world.yaml) in other '
                           'formats')
    world_sub = world.add_subparsers(dest='world_command', required=True)
    export = world_sub.add_parser(
        'export', help='write the world as a Gazebo (gz sim) SDF world: walls and obstacles as '
        'static boxes or extruded polygons, a ground plane, the robot at its start')
    form = export.add_mutually_exclusive_group(required=True)
    form.add_argument('--sdf', action='store_true', help='SDFormat (the only format so far)')
    export.add_argument('--world', help='world YAML (default: the package config/world.yaml)')
    export.add_argument('--out', help='output file (default: standard output)')
    export.add_argument('--height', type=_height, default=1.0,
                        help='height of every obstacle in metres (the world YAML has none; '
                        'default 1.0)')
    export.set_defaults(func=cmd_world_export)


def _height(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from None
    if not 0.0 < value < float('inf'):
        raise argparse.ArgumentTypeError(f'must be a positive number of metres, got {text}')
    return value
