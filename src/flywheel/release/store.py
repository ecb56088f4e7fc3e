"""ReleaseStore: the robot's on-disk record of the trust root and installed releases.

    <dir>/root.json            the trusted root (older ones kept as root.v<N>.json)
    <dir>/releases/<N>.tar.gz  every installed release bundle, exactly as signed
    <dir>/state.json           {"active": N, "previous": M, "installed_max": K, "nonces": [...]}

Every write is atomic (write a temporary file, fsync, rename), so a restart never sees half a
state and never loses the active release.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from flywheel.errors import ReleaseError


@dataclass
class StoreState:
    active: int | None = None
    previous: int | None = None
    installed_max: int = 0           # anti-rollback: no submitted release at or below this
    nonces: list[str] = field(default_factory=list)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    with open(tmp, 'wb') as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class ReleaseStore:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        (self.dir / 'releases').mkdir(parents=True, exist_ok=True)

    @property
    def root_path(self) -> Path:
        return self.dir / 'root.json'

    def root_bytes(self) -> bytes | None:
        return self.root_path.read_bytes() if self.root_path.exists() else None

    def set_root(self, data: bytes, version: int) -> None:
        if self.root_path.exists():
            os.replace(self.root_path, self.dir / f'root.v{version - 1}.json')
        write_atomic(self.root_path, data)

    def state(self) -> StoreState:
        path = self.dir / 'state.json'
        if not path.exists():
            return StoreState()
        try:
            return StoreState(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ReleaseError(f'{path}: unreadable release state ({exc})') from exc

    def save_state(self, state: StoreState) -> None:
        write_atomic(self.dir / 'state.json', json.dumps(state.__dict__, indent=2).encode())

    def bundle(self, number: int) -> bytes:
        path = self.dir / 'releases' / f'{number}.tar.gz'
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ReleaseError(f'release {number} is not in the store ({exc.strerror})') from exc

    def add_bundle(self, number: int, data: bytes) -> None:
        write_atomic(self.dir / 'releases' / f'{number}.tar.gz', data)
