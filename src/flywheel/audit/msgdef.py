"""Concatenated ROS 2 message definitions (the `ros2msg` schema text MCAP readers expect), read
from the .msg files the packages install under share/<package>/msg/."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from flywheel.errors import FlywheelError

PRIMITIVES = {'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
              'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring'}
SEPARATOR = '=' * 80


def msg_file(package: str, name: str) -> Path:
    """The installed .msg file: found through the ament index, or in this interpreter's prefix,
    where ROS packages installed as Python wheels put their share/ (a venv is not on the index
    unless someone adds it)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    try:
        share = Path(get_package_share_directory(package))
    except PackageNotFoundError:
        share = Path(sys.prefix) / 'share' / package
        if not share.is_dir():
            raise FlywheelError(f'message package {package!r} is not installed') from None
    path = share / 'msg' / f'{name}.msg'
    if not path.is_file():
        raise FlywheelError(f'no definition of {package}/{name} at {path}')
    return path


def _dependencies(package: str, text: str) -> list[tuple[str, str]]:
    found = []
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        base = re.sub(r'(<=\d+)?(\[.*\])?$', '', line.split()[0])
        if base in PRIMITIVES or re.match(r'(w?string)<=\d+', line.split()[0]):
            continue
        pkg, _, name = base.rpartition('/')
        found.append((pkg.replace('/msg', '') or package, name))
    return found


def full_text(package: str, name: str) -> str:
    """The definition of package/name followed by each message it uses, once, depth first."""
    seen, parts = {(package, name)}, []

    def visit(pkg: str, msg: str) -> None:
        for dep in _dependencies(pkg, msg_file(pkg, msg).read_text()):
            if dep not in seen:
                seen.add(dep)
                parts.append(f'{SEPARATOR}\nMSG: {dep[0]}/{dep[1]}\n'
                             f'{msg_file(*dep).read_text().rstrip()}\n')
                visit(*dep)

    main = msg_file(package, name).read_text().rstrip() + '\n'
    visit(package, name)
    return main + ''.join(parts)
