"""Who may sign which message on the bus, and checking that they did (Ed25519).

Any participant on the DDS domain can publish on any topic, and SROS2 is off on many robots, so
what counts is decided by signatures. The TUF trust root that governance holds names, besides the
operator keys of its root and targets roles, the keys of each signer role:

    "x-flywheel-signers": {"oracle": [keyid, ...], "governance": [keyid, ...],
                           "verifier": [keyid, ...],
                           "proposers": {"<proposer_id>": [keyid, ...]}}

The verifier key signs the answers to escalations (msg/VerifierAnswer): a safe one releases an
escalated command at the Gate and raises governance's coverage overlay, so it is a role of its
own, never the Oracle's key (an Oracle that could answer its own escalations would verify
itself). A root without the role names no verifier: every escalation then stays stopped.

The field is part of the root's signed bytes, so it is as trustworthy as the root, and rotating or
revoking a node's key is a root rotation, shipped inside a signed release like any other. Public
keys sit in the root's ``keys`` like the operators'. Private keys live in PEM files readable by
their owner only, never in parameters or logs.

Why Ed25519 and not a MAC: a MAC key must be secret on every Gate and Oracle, and any node holding
it can forge what all others say; a signature key never leaves the Oracle. Measured cost
(bench/auth.py): sign + verify well under the 0.3 ms the control loop allows.
"""
from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.signer import SSlibKey

from flywheel.errors import KeyFileError
from flywheel.files import PROVISION_HINT

SIGNERS_FIELD = 'x-flywheel-signers'
ORACLE, GOVERNANCE, VERIFIER, PROPOSERS = 'oracle', 'governance', 'verifier', 'proposers'
SIGNATURE_BYTES = 64


def key_id_of(public: Ed25519PublicKey) -> str:
    """The TUF key id of a public key (derived from the key material, never chosen)."""
    return SSlibKey.from_crypto(public).keyid


@dataclass(frozen=True)
class MessageKey:
    """A node's private signing key and its id in the trust root."""

    key_id: str
    private: Ed25519PrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def load_message_key(path: str | Path) -> MessageKey:
    """A PEM Ed25519 private key that only its owner can read (KeyFileError otherwise)."""
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f'{path}: not a regular file')
        if info.st_mode & 0o077:
            raise KeyFileError(f'{path}: readable by others (mode {stat.S_IMODE(info.st_mode):o});'
                               f' run chmod 600 {path}')
        private = serialization.load_pem_private_key(path.read_bytes(), None)
    except OSError as exc:
        raise KeyFileError(f'{path}: cannot read the signing key ({exc.strerror}){PROVISION_HINT}'
                           ) from exc
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f'{path}: not a PEM private key') from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f'{path}: not an Ed25519 key')
    return MessageKey(key_id_of(private.public_key()), private)


def write_message_key(path: str | Path) -> MessageKey:
    """Create a new key file (mode 0600; refuses to overwrite) with its public half beside it
    (``<stem>.pub.json``, what `flywheel root init --oracle-key ...` reads); return the key."""
    from flywheel.release.keys import generate_key
    generate_key(Path(path))
    return load_message_key(path)


def assign_signers(root, oracle: list[SSlibKey], governance: list[SSlibKey],
                   proposers: dict[str, list[SSlibKey]] | None = None,
                   verifier: list[SSlibKey] = ()) -> None:
    """Name the signer keys in an (unsigned, not yet signed) tuf Root: keys and roles."""
    for key in [*oracle, *governance, *verifier,
                *(k for ks in (proposers or {}).values() for k in ks)]:
        root.keys[key.keyid] = key
    root.unrecognized_fields[SIGNERS_FIELD] = {
        ORACLE: sorted(k.keyid for k in oracle),
        GOVERNANCE: sorted(k.keyid for k in governance),
        VERIFIER: sorted(k.keyid for k in verifier),
        PROPOSERS: {pid: sorted(k.keyid for k in keys)
                    for pid, keys in sorted((proposers or {}).items())}}


class Keyring:
    """The public keys each signer role may sign with, from one verified trust root."""

    def __init__(self, roles: dict[str, dict[str, Ed25519PublicKey]],
                 proposers: dict[str, dict[str, Ed25519PublicKey]], root_version: int):
        self._roles = roles
        self._proposers = proposers
        self.root_version = root_version

    @classmethod
    def from_root(cls, root) -> 'Keyring':
        """From tuf Metadata[Root] (already verified by the caller: self-signed or rotated)."""
        signed = root.signed
        field = signed.unrecognized_fields.get(SIGNERS_FIELD) or {}
        if not isinstance(field, dict):
            field = {}

        def public(key_ids) -> dict[str, Ed25519PublicKey]:
            keys = {}
            for key_id in key_ids if isinstance(key_ids, list) else []:
                key = signed.keys.get(key_id)
                if key is not None and key.keytype == 'ed25519':
                    keys[key_id] = Ed25519PublicKey.from_public_bytes(
                        bytes.fromhex(key.keyval['public']))
            return keys
        proposers = field.get(PROPOSERS) if isinstance(field.get(PROPOSERS), dict) else {}
        return cls({role: public(field.get(role)) for role in (ORACLE, GOVERNANCE, VERIFIER)},
                   {pid: public(ids) for pid, ids in proposers.items()}, signed.version)

    def names(self, role: str) -> bool:
        return bool(self._roles.get(role))

    def signs_proposals(self, proposer_id: str) -> bool:
        """Does the root name keys for this proposer (then its proposals must be signed)?"""
        return bool(self._proposers.get(proposer_id))

    def check(self, role: str, key_id: str, signature: bytes, data: bytes) -> str | None:
        """Why this signature does not count for ``role`` (None when it does)."""
        return _check(self._roles.get(role, {}), role, key_id, signature, data)

    def check_proposal(self, proposer_id: str, key_id: str, signature: bytes,
                       data: bytes) -> str | None:
        return _check(self._proposers.get(proposer_id, {}), f'proposer {proposer_id!r}', key_id,
                      signature, data)


def _check(keys: dict[str, Ed25519PublicKey], who: str, key_id: str, signature: bytes,
           data: bytes) -> str | None:
    if not signature:
        return f'unsigned (a {who} signature is required)'
    key = keys.get(key_id)
    if key is None:
        return f'key {key_id[:16]!r} is not a {who} key of the trust root'
    if len(signature) != SIGNATURE_BYTES:
        return f'signature of {len(signature)} bytes'
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return f'bad signature by {who} key {key_id[:16]}'
    return None
