from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import new_root, sign
from test.conftest import CONFIG

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)   # the reference time, fixed once
LATER = NOW + timedelta(days=30)


@pytest.fixture
def operators(tmp_path):
    """Three operator key pairs: (signer, public key)."""
    out = []
    for name in ('alice', 'bob', 'carol'):
        public = generate_key(tmp_path / 'keys' / f'{name}.pem')
        out.append((load_signer(tmp_path / 'keys' / f'{name}.pem'), public))
    return out


@pytest.fixture
def root(operators):
    """A 2-of-3 trust root, signed by two operators."""
    md = new_root([p for _, p in operators], root_threshold=2, targets_threshold=2,
                  expires=NOW + timedelta(days=365))
    for signer, _ in operators[:2]:
        sign(md, signer)
    return md


def spec_bytes(version: str = '1.1.0', **replace: str) -> bytes:
    text = (CONFIG / 'oracle_spec.yaml').read_text().replace('version: "1.0.0"',
                                                             f'version: "{version}"', 1)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text.encode()
