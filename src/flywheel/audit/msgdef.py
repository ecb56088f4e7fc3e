"""Concatenated ROS 2 message definitions (the `ros2msg` schema text MCAP readers expect), read
from the .msg files the packages install under share/<package>/msg/, with the message types each
one uses found by rosidl's own parser (rosidl_adapter, part of every ROS 2 install)."""
from __future__ import annotations

import sys
from pathlib import Path

from flywheel.errors import FlywheelError

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


def _dependencies(package: str, name: str, text: str) -> list[tuple[str, str]]:
    """(package, message) of every field of a message type, in field order."""
    try:
        from rosidl_adapter.parser import InvalidSpecification, parse_message_string
    except ImportError as exc:
        raise FlywheelError('reading message definitions needs rosidl_adapter (part of a ROS 2 '
                            'install; ros-rosidl-adapter on PyPI)') from exc
    try:
        spec = parse_message_string(package, name, text)
    except (InvalidSpecification, ValueError) as exc:
        raise FlywheelError(f'{package}/{name}: not a valid message definition: {exc}') from exc
    return [(f.type.pkg_name, f.type.type) for f in spec.fields
            if not f.type.is_primitive_type()]


def full_text(package: str, name: str) -> str:
    """The definition of package/name followed by each message it uses, once, depth first."""
    seen, parts = {(package, name)}, []

    def visit(pkg: str, msg: str, text: str) -> None:
        for dep in _dependencies(pkg, msg, text):
            if dep not in seen:
                seen.add(dep)
                dep_text = msg_file(*dep).read_text()
                parts.append(f'{SEPARATOR}\nMSG: {dep[0]}/{dep[1]}\n{dep_text.rstrip()}\n')
                visit(*dep, dep_text)

    main = msg_file(package, name).read_text()
    visit(package, name, main)
    return main.rstrip() + '\n' + ''.join(parts)
