"""Reading a configured file with an error that says which file, for what, and why."""
from __future__ import annotations

from pathlib import Path

from flywheel.errors import InputError

PROVISION_HINT = ' (run `flywheel keys init` to provision this robot\'s keys and trust root)'


def read_file(path: str | Path, what: str, hint: str = PROVISION_HINT) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f'{path}: cannot read the {what}: {exc.strerror}{hint}') from exc
