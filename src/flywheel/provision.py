"""Provisioning one robot's trust: an operator key, the nodes' message keys, and a trust root
naming them (``flywheel keys init``).

What it makes is for a robot that has no operators of its own yet (a development machine, the
demo, the tests): one operator key signs the root 1-of-1 and it lives beside the node keys. A
fielded robot gets its root from its operators instead (``flywheel root init`` with each
operator's public key and the node keys' public halves); the nodes read the same file names.

    <dir>/root.json                 the trust root (TUF root metadata with x-flywheel-signers)
    <dir>/operator.pem, .pub.json   signs the root and releases (k-of-n on a real robot)
    <dir>/oracle.pem                signs every SafetySignals
    <dir>/governance.pem            signs OracleStatus, OracleRelease and CoverageOverlay
    <dir>/verifier.pem              signs the verifier's answers (VerifierAnswer)
    <dir>/proposer.pem              signs the Proposer's proposals
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from securesystemslib.signer import SSlibKey

from flywheel.auth import assign_signers, write_message_key
from flywheel.errors import KeyFileError
from flywheel.release.keys import generate_key, load_signer
from flywheel.release.root import new_root, sign

ROOT, OPERATOR = 'root.json', 'operator.pem'
NODE_KEYS = {'oracle': 'oracle.pem', 'governance': 'governance.pem',
             'verifier': 'verifier.pem', 'proposer': 'proposer.pem'}


def default_key_dir(ros_home: str | Path | None = None) -> Path:
    """$ROS_HOME/alignment_flywheel/keys (ROS_HOME defaults to ~/.ros)."""
    home = Path(ros_home or os.environ.get('ROS_HOME') or Path.home() / '.ros')
    return home / 'alignment_flywheel' / 'keys'


def key_path(configured: str, name: str) -> Path:
    """A node parameter naming a key or root file: as given, or the default directory's file."""
    return Path(configured).expanduser() if configured else default_key_dir() / name


@dataclass(frozen=True)
class Provisioned:
    directory: Path
    root_path: Path
    created: bool


def provision(directory: Path, now: datetime, expires_days: int = 365,
              proposer_ids: tuple[str, ...] = ('proposer',)) -> Provisioned:
    """Create the keys and root in ``directory`` unless a root is already there (never
    overwrites a key: an existing one means someone else provisioned this robot)."""
    directory = Path(directory)
    root_path = directory / ROOT
    if root_path.exists():
        return Provisioned(directory, root_path, False)
    for name in (OPERATOR, *NODE_KEYS.values()):
        if (directory / name).exists():
            raise KeyFileError(f'{directory / name} exists but {root_path} does not: refusing to '
                               'provision over someone else\'s keys')
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    operator = generate_key(directory / OPERATOR)
    public = {role: SSlibKey.from_crypto(write_message_key(directory / name).private.public_key())
              for role, name in NODE_KEYS.items()}       # each with its .pub.json beside it
    root = new_root([operator], 1, 1, now + timedelta(days=expires_days))
    assign_signers(root.signed, [public['oracle']], [public['governance']],
                   {pid: [public['proposer']] for pid in proposer_ids}, [public['verifier']])
    sign(root, load_signer(directory / OPERATOR))
    tmp = root_path.with_suffix('.tmp')
    tmp.write_bytes(root.to_bytes())
    os.replace(tmp, root_path)
    return Provisioned(directory, root_path, True)
