"""Operator signing keys (Ed25519): a private key file (PEM, mode 0600) and a public key file
(JSON, the TUF key with its id) that goes into a trust root.

A key's id is never taken on trust: it is derived from the key material the way securesystemslib
derives it (`SSlibKey.from_crypto`), and a key file or a trust root whose key id differs, or that
lists the same key material twice, is refused. Otherwise one operator's key listed under two ids
would count twice toward a threshold.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

from flywheel.errors import (DuplicateKeyError, InputError, KeyIdMismatchError,
                             OperatorKeyError)

MAX_KEY_FILE_BYTES = 64 * 1024


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
    raw = _read(private_path)
    try:
        private = serialization.load_pem_private_key(raw, None)
    except (ValueError, TypeError) as exc:
        raise OperatorKeyError(f'{private_path}: not a readable PEM private key ({exc})') from exc
    signer = CryptoSigner(private)
    canonical_key(signer.public_key, str(private_path))
    return signer


def load_public(path: Path) -> SSlibKey:
    """The public key in a .pub.json file; its key id must be the one its material gives."""
    try:
        doc = json.loads(_read(path))
        keyid = doc.pop('keyid')
        key = SSlibKey.from_dict(keyid, doc)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OperatorKeyError(f'{path}: not a public key file ({exc})') from exc
    return canonical_key(key, str(path))


def canonical_key(key: Key, where: str) -> SSlibKey:
    """``key`` if it is an Ed25519 key whose id is the one derived from its material."""
    if (not isinstance(key, SSlibKey) or key.keytype != 'ed25519' or key.scheme != 'ed25519'
            or set(key.keyval) != {'public'}):
        raise OperatorKeyError(f'{where}: key {key.keyid!r} is not an Ed25519 key '
                               f'(keytype {key.keytype!r}, scheme {key.scheme!r})')
    try:
        material = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.keyval['public']))
    except (ValueError, TypeError) as exc:
        raise OperatorKeyError(f'{where}: key {key.keyid!r}: bad Ed25519 public key '
                               f'({exc})') from exc
    derived = SSlibKey.from_crypto(material, scheme='ed25519')
    if derived.keyid != key.keyid:
        raise KeyIdMismatchError(f'{where}: key id {key.keyid!r} is not the id of its key '
                                 f'material ({derived.keyid!r})')
    return derived


def check_distinct(keys: Iterable[Key], where: str) -> None:
    """Refuse the same key material listed twice (under any ids)."""
    seen: dict[bytes, str] = {}
    for key in keys:
        material = bytes.fromhex(canonical_key(key, where).keyval['public'])
        if material in seen:
            raise DuplicateKeyError(f'{where}: key {key.keyid!r} is the same key as '
                                    f'{seen[material]!r}')
        seen[material] = key.keyid


def _read(path: Path) -> bytes:
    try:
        with open(path, 'rb') as src:
            data = src.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f'{path}: {exc.strerror or exc}') from exc
    if len(data) > MAX_KEY_FILE_BYTES:
        raise OperatorKeyError(f'{path}: larger than {MAX_KEY_FILE_BYTES} bytes; not a key file')
    return data
