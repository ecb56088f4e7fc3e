"""`flywheel keys init`: provision this robot's node keys and a trust root naming them."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from flywheel.provision import NODE_KEYS, default_key_dir, provision


def ensure_keys(directory: Path, quiet: bool = False) -> Path:
    """The directory's trust root, provisioning it first if there is none."""
    done = provision(directory, datetime.now(timezone.utc))
    if done.created and not quiet:
        print(f'flywheel: no trust root in {directory}: created one for this machine (an '
              f'operator key and the {", ".join(NODE_KEYS)} keys; a fielded robot gets its '
              'root from its operators: flywheel root init)', flush=True)
    return done.root_path


def cmd_keys_init(args) -> int:
    directory = Path(args.dir) if args.dir else default_key_dir()
    done = provision(directory, datetime.now(timezone.utc), args.expires_days,
                     tuple(args.proposer))
    if not done.created:
        print(f'{done.root_path} exists already: nothing changed')
        return 0
    print(f'created {done.root_path}: operator key operator.pem (signs the root and releases, '
          f'1-of-1), node keys {", ".join(NODE_KEYS.values())} (mode 0600), valid '
          f'{args.expires_days} days; nodes find them here by default')
    return 0


def add_commands(sub) -> None:
    keys = sub.add_parser('keys', help="this robot's node keys and trust root")
    keys_sub = keys.add_subparsers(dest='keys_command', required=True)
    init = keys_sub.add_parser(
        'init', help='create an operator key, the oracle/governance/verifier/proposer keys and a '
        'trust root naming them (refuses to overwrite existing keys)')
    init.add_argument('--dir', help='where (default: $ROS_HOME/alignment_flywheel/keys, which '
                      'every node reads when its key and root paths are "")')
    init.add_argument('--expires-days', type=_positive, default=365,
                      help='days until the trust root expires (default 365)')
    init.add_argument('--proposer', action='append', default=['proposer'],
                      help='a proposer id whose proposals must be signed with proposer.pem '
                      '(repeatable; default: proposer)')
    init.set_defaults(func=cmd_keys_init)


def _positive(text: str) -> int:
    import argparse
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value
