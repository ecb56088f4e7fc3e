"""Operator signing keys (Ed25519): a private key file (PEM, mode 0600) and a public key file
(JSON, the TUF key with its id) that goes into a trust root."""
from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from securesystemslib.signer import CryptoSigner, SSlibKey

from flywheel.errors import ReleaseError


def generate_key(private_path: Path) -> SSlibKey:
    """Write a key pair, ``private_path`` (PEM) and ``<stem>.pub.json``; return the public key."""
    private_path = Path(private_path)
    signer = CryptoSigner.generate_ed25519()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as out:
        out.write(signer.private_bytes)
    public_path(private_path).write_text(json.dumps(
        {'keyid': signer.public_key.keyid, **signer.public_key.to_dict()}, indent=2) + '\n')
    return signer.public_key


def public_path(private_path: Path) -> Path:
    return Path(private_path).with_suffix('.pub.json')


def load_signer(private_path: Path) -> CryptoSigner:
    try:
        private = serialization.load_pem_private_key(Path(private_path).read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise ReleaseError(f'{private_path}: not a readable PEM private key ({exc})') from exc
    return CryptoSigner(private)


def load_public(path: Path) -> SSlibKey:
    try:
        doc = json.loads(Path(path).read_text())
        return SSlibKey.from_dict(doc.pop('keyid'), doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReleaseError(f'{path}: not a public key file ({exc})') from exc
