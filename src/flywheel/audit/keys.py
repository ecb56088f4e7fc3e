"""The ledger writer's Ed25519 key: it signs checkpoints, so a rewritten chain is detectable by
anyone holding the public key, not only an accidental edit."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from flywheel.errors import LedgerError


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The private key at ``path`` (PEM); created (mode 0600, public key beside it as .pub)."""
    path = Path(path)
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise LedgerError(f'{path}: not a PEM private key: {exc}') from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise LedgerError(f'{path}: not an Ed25519 key')
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as out:
        out.write(pem)
    path.with_suffix(path.suffix + '.pub').write_bytes(public_pem(key.public_key()))
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise LedgerError(f'not a PEM public key: {exc}') from exc
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerError('not an Ed25519 public key')
    return key


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_message(seq: int, record_hash: str) -> bytes:
    return f'flywheel.ledger.checkpoint.v1:{int(seq)}:{record_hash}'.encode('ascii')


def signature_ok(key: Ed25519PublicKey, seq: int, record_hash: str, signature_hex: str) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), checkpoint_message(seq, record_hash))
        return True
    except (InvalidSignature, ValueError):
        return False
