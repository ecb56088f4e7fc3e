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


def craft(operators, spec: bytes, number: int = 2, expires=LATER, root: bytes | None = None,
          pin_root: bool = True, version: str = '1.1.0', count: int = 2) -> bytes:
    """A bundle whose targets metadata is made and signed here, so a test can sign what
    `build_bundle` refuses to build (a malicious or mistaken operator's release)."""
    from tuf.api.metadata import Metadata, TargetFile, Targets

    from flywheel.release.archive import pack
    from flywheel.release.bundle import ROOT, SPEC, TARGETS
    target = TargetFile.from_data(SPEC, spec, ['sha256'])
    target.unrecognized_fields['custom'] = {'oracle_version': version, 'parent_version': ''}
    pinned = {SPEC: target}
    if root is not None and pin_root:
        pinned[ROOT] = TargetFile.from_data(ROOT, root, ['sha256'])
    md = Metadata(Targets(version=number, expires=expires, targets=pinned))
    for signer, _ in operators[:count]:
        md.sign(signer, append=True)
    return pack({TARGETS: md.to_bytes(), SPEC: spec, **({ROOT: root} if root is not None else {})})


def signed_root_dict(doc: dict, signers) -> bytes:
    """Root metadata JSON from a dict, signed over its canonical form: for roots tuf itself
    would refuse to build (a threshold of 0, a key under a forged id)."""
    import json

    from securesystemslib.formats import encode_canonical
    payload = encode_canonical(doc['signed']).encode()
    doc['signatures'] = [{'keyid': s.public_key.keyid, 'sig': s.sign(payload).signature}
                         for s in signers]
    return json.dumps(doc).encode()
