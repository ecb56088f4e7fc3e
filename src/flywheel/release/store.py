"""ReleaseStore: the robot's on-disk record of the trust roots and installed releases.

    <dir>/root.v<N>.json       every trust root ever trusted, by version (never rewritten)
    <dir>/root.json            a copy of the current one (state.json's root_version says which)
    <dir>/releases/<N>.tar.gz  every installed release bundle, exactly as signed
    <dir>/state.json           StoreState as JSON: the commit point of every change, the
                               candidate in rollout and its Rollout state included

Every write is atomic (write a temporary file, fsync, rename), and state.json is written last, only
after every file it names is in place: a restart never sees half a state and never loses the
active release. Everything read back is checked (numbers in range, known keys) and a bad file is a
StoreError naming it, never a traceback.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from flywheel.errors import StoreError
from flywheel.release.bundle import MAX_BUNDLE_BYTES, MAX_RELEASE_NUMBER
from flywheel.release.root import MAX_ROOT_BYTES, MAX_ROOT_VERSION
from flywheel.release.rollout import Rollout

MAX_NONCES = 1000
MAX_NONCE_CHARS = 128
MAX_STATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoreState:
    """What is installed. ``active_root``/``previous_root``/``candidate_root`` are the versions of
    the trust roots that verified those releases (None in stores written before they were
    recorded). ``candidate`` is a release in staged rollout beside the active one, ``rollout``
    its `Rollout.to_dict()`: both or neither."""

    active: int | None = None
    previous: int | None = None
    installed_max: int = 0           # anti-rollback: no submitted release at or below this
    nonces: tuple[str, ...] = ()
    root_version: int | None = None  # the current trust root (None: whatever root.json holds)
    active_root: int | None = None
    previous_root: int | None = None
    candidate: int | None = None
    candidate_root: int | None = None
    rollout: dict | None = field(default=None, hash=False)

    def __post_init__(self):
        for name, hi in (('active', MAX_RELEASE_NUMBER), ('previous', MAX_RELEASE_NUMBER),
                         ('root_version', MAX_ROOT_VERSION), ('active_root', MAX_ROOT_VERSION),
                         ('previous_root', MAX_ROOT_VERSION),
                         ('candidate', MAX_RELEASE_NUMBER), ('candidate_root', MAX_ROOT_VERSION)):
            value = getattr(self, name)
            if value is not None:
                _check_int(name, value, 1, hi)
        _check_int('installed_max', self.installed_max, 0, MAX_RELEASE_NUMBER)
        if not isinstance(self.nonces, tuple) or len(self.nonces) > MAX_NONCES or not all(
                isinstance(n, str) and 0 < len(n) <= MAX_NONCE_CHARS for n in self.nonces):
            raise ValueError(f'nonces: need up to {MAX_NONCES} strings of 1..{MAX_NONCE_CHARS} '
                             'characters')
        if (self.candidate is None) != (self.rollout is None):
            raise ValueError('candidate: a candidate and its rollout go together, got candidate '
                             f'{self.candidate!r} with' + ('out' if self.rollout is None else '')
                             + ' a rollout')
        if self.rollout is not None:
            number = Rollout.from_dict(self.rollout).number
            if number != self.candidate:
                raise ValueError(f'rollout: of release {number}, but the candidate is '
                                 f'{self.candidate}')
            if self.candidate > self.installed_max:
                raise ValueError(f'candidate: {self.candidate} is above installed_max '
                                 f'{self.installed_max}')

    def to_json(self) -> bytes:
        return json.dumps({**dataclasses.asdict(self), 'nonces': list(self.nonces)},
                          indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> StoreState:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError(f'expected an object, got {type(doc).__name__}')
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f'unknown key {unknown[0]!r}')
        if 'nonces' in doc:
            if not isinstance(doc['nonces'], list):
                raise ValueError('nonces: expected a list')
            doc['nonces'] = tuple(doc['nonces'])
        return cls(**doc)


def _check_int(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f'{name}: need an integer in {lo}..{hi}, got {value!r}')


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
        try:
            (self.dir / 'releases').mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f'{self.dir}: cannot create the release store '
                             f'({exc.strerror or exc})') from exc

    @property
    def root_path(self) -> Path:
        return self.dir / 'root.json'

    def root_bytes(self, version: int | None = None) -> bytes | None:
        """The current root (root.json), or the root of ``version``; None if there is none."""
        path = self.root_path if version is None else self.dir / f'root.v{version}.json'
        return self._read(path, MAX_ROOT_BYTES) if path.exists() else None

    def root_versions(self) -> list[int]:
        """Versions of the stored roots, newest first."""
        versions = []
        for path in self.dir.glob('root.v*.json'):
            digits = path.name[len('root.v'):-len('.json')]
            if digits.isdigit() and len(digits) <= 10:
                versions.append(int(digits))
        return sorted(versions, reverse=True)

    def add_root(self, data: bytes, version: int) -> None:
        """Keep a trusted root by version and make it root.json (state.json still decides)."""
        self._write(self.dir / f'root.v{version}.json', data)
        self._write(self.root_path, data)

    def state(self) -> StoreState:
        path = self.dir / 'state.json'
        if not path.exists():
            return StoreState()
        try:
            return StoreState.from_json(self._read(path, MAX_STATE_BYTES))
        except (ValueError, TypeError) as exc:
            raise StoreError(f'{path}: unreadable release state ({exc})') from exc

    def save_state(self, state: StoreState) -> None:
        self._write(self.dir / 'state.json', state.to_json())

    def bundle(self, number: int, max_bytes: int = MAX_BUNDLE_BYTES) -> bytes:
        path = self.dir / 'releases' / f'{number}.tar.gz'
        if not path.exists():
            raise StoreError(f'release {number} is not in the store ({path} is missing)')
        return self._read(path, max_bytes)

    def add_bundle(self, number: int, data: bytes) -> None:
        self._write(self.dir / 'releases' / f'{number}.tar.gz', data)

    @staticmethod
    def _read(path: Path, max_bytes: int) -> bytes:
        try:
            with open(path, 'rb') as src:
                data = src.read(max_bytes + 1)
        except OSError as exc:
            raise StoreError(f'{path}: cannot read ({exc.strerror or exc})') from exc
        if len(data) > max_bytes:
            raise StoreError(f'{path}: larger than {max_bytes} bytes')
        return data

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise StoreError(f'{path}: cannot write ({exc.strerror or exc})') from exc
