"""`flywheel keygen`, `flywheel release build|sign|verify`, `flywheel root init|sign|rotate|verify`:
the operator's offline commands (no ROS needed). `release push`, `status` and `rollback` talk to
the running governance node (flywheel/ros/release_client.py).

`release verify` decides exactly as governance does: both call `verify_submission` with the
trusted root, the time, the installed release number and the size limit.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flywheel.auth import SIGNERS_FIELD, assign_signers
from flywheel.errors import InputError, ReleaseError
from flywheel.release.bundle import (MAX_BUNDLE_BYTES, MAX_PLAN_BYTES, MAX_REGRESSION_BYTES,
                                     MAX_RELEASE_NUMBER, build_bundle, sign_bundle, spec_version)
from flywheel.release.keys import generate_key, load_public, load_signer, public_path
from flywheel.release.root import (MAX_ROOT_BYTES, check_self_signed, load_root, new_root, sign,
                                   verify_rotation)
from flywheel.release.submission import verify_submission

MAX_DAYS = 3650.0
MAX_TIMEOUT_S = 3600.0
MAX_SPEC_FILE_BYTES = 64 * 1024 * 1024


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _read(path: str, limit: int = MAX_SPEC_FILE_BYTES) -> bytes:
    """A file's bytes; one larger than ``limit`` is read only that far (the check that follows
    refuses it as oversize)."""
    try:
        with open(path, 'rb') as src:
            return src.read(limit + 1)
    except OSError as exc:
        raise InputError(f'{path}: {exc.strerror or exc}') from exc


# -- option types: every number an operator types is bounded here (a bad one is exit 2) --------

def int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f'must be in {lo}..{hi}, got {value}')
        return value
    return parse


def positive_float(hi: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from None
        if not 0.0 < value <= hi:            # NaN fails this too
            raise argparse.ArgumentTypeError(f'must be in (0, {hi:g}], got {text}')
        return value
    return parse


RELEASE_NUMBER = int_in(1, MAX_RELEASE_NUMBER)
INSTALLED_NUMBER = int_in(0, MAX_RELEASE_NUMBER)
DAYS = positive_float(MAX_DAYS)
SECONDS = positive_float(MAX_TIMEOUT_S)


# -- commands -----------------------------------------------------------------------------------

def cmd_keygen(args) -> int:
    private = Path(args.out)
    if private.exists():
        raise InputError(f'{private} exists; refusing to overwrite a key')
    key = generate_key(private)
    print(f'wrote {private} (keep it secret) and {public_path(private)}; key id {key.keyid}')
    return 0


def cmd_build(args) -> int:
    spec = _read(args.spec)
    version = spec_version(spec)
    if args.version and args.version != version:
        raise ReleaseError(f'--version {args.version}, but the spec says {version!r}')
    bundle = build_bundle(spec, args.number, _now() + timedelta(days=args.expires_days),
                          parent=args.parent,
                          root=_read(args.root, MAX_ROOT_BYTES) if args.root else None,
                          plan=_read(args.plan, MAX_PLAN_BYTES) if args.plan else None,
                          regression=(_read(args.regression, MAX_REGRESSION_BYTES)
                                      if args.regression else None))
    Path(args.out).write_bytes(bundle)
    carried = [what for what, given in (('a trust root', args.root),
                                        ('its rollout plan', args.plan),
                                        ('a regression suite', args.regression)) if given]
    print(f'wrote {args.out}: Oracle {version}, release number {args.number}'
          + (f', carrying (and pinning) {" and ".join(carried)}' if carried else '')
          + (', rolled out by the robot\'s default plan' if not args.plan else '')
          + f', unsigned; now `flywheel release sign {args.out} --key ...` by enough operators')
    return 0


def cmd_sign(args) -> int:
    signer = load_signer(Path(args.key))
    Path(args.bundle).write_bytes(sign_bundle(_read(args.bundle, MAX_BUNDLE_BYTES), signer))
    print(f'signed {args.bundle} with key {signer.public_key.keyid}')
    return 0


def cmd_verify(args) -> int:
    root = load_root(_read(args.root, MAX_ROOT_BYTES))
    installed = args.installed if args.installed is not None else installed_from_status(
        args.status)
    release, rotated = verify_submission(_read(args.bundle, args.max_bytes), root, _now(),
                                         installed, args.max_bytes)
    print(f'OK: Oracle {release.oracle_version} (parent {release.parent_version or "-"}), '
          f'release number {release.number} (installed {installed}), signed by '
          f'{len(release.signed_by)} trusted key(s) of trust root v{release.root_version}, '
          f'expires {release.expires.isoformat()}, sha256 {release.bundle_sha256}')
    if rotated is not None:
        print(f'it rotates the trust root to v{rotated.signed.version} (signed by the thresholds '
              f'of v{root.signed.version} and v{rotated.signed.version}); governance installs '
              'both together')
    return 0


def installed_from_status(path: str) -> int:
    """The release number governance will not go back to, from `flywheel status --json`."""
    try:
        doc = json.loads(_read(path, 1024 * 1024))
    except ValueError as exc:
        raise InputError(f'{path}: not a `flywheel status --json` file ({exc})') from exc
    if not isinstance(doc, dict):
        raise InputError(f'{path}: not a `flywheel status --json` file')
    check = int_in(0, MAX_RELEASE_NUMBER)
    try:
        if 'installed_max' in doc:
            return check(str(doc['installed_max']))
        highest = max(check(str(doc['active_number'])), check(str(doc['previous_number'])))
    except (KeyError, argparse.ArgumentTypeError) as exc:
        raise InputError(f'{path}: no usable release numbers ({exc})') from exc
    print(f'note: {path} has no installed_max; using the highest release number it names '
          f'({highest}). After a rollback governance refuses numbers up to the highest ever '
          'installed, which may be higher: give --installed if you know it.', file=sys.stderr)
    return highest


def _signers(args, md, old=None) -> None:
    """Name the node keys (oracle, governance, verifier, proposers) in the new root; a rotation
    that names none keeps the old root's."""
    if not (args.oracle_key or args.governance_key or args.verifier_key or args.proposer_key):
        field = old.signed.unrecognized_fields.get(SIGNERS_FIELD) if old else None
        if field:
            md.signed.unrecognized_fields[SIGNERS_FIELD] = field
            ids = {k for role in ('oracle', 'governance', 'verifier')
                   for k in field.get(role, [])} | {
                k for keys in field.get('proposers', {}).values() for k in keys}
            for key_id in ids & set(old.signed.keys):
                md.signed.keys[key_id] = old.signed.keys[key_id]
        return
    proposers: dict[str, list] = {}
    for item in args.proposer_key:
        proposer_id, sep, path = item.partition('=')
        if not sep or not proposer_id:
            raise InputError(f'--proposer-key {item!r}: expected PROPOSER_ID=FILE.pub.json')
        proposers.setdefault(proposer_id, []).append(load_public(Path(path)))
    assign_signers(md.signed, [load_public(Path(p)) for p in args.oracle_key],
                   [load_public(Path(p)) for p in args.governance_key], proposers,
                   [load_public(Path(p)) for p in args.verifier_key])


def cmd_root_init(args) -> int:
    keys = [load_public(Path(p)) for p in args.key]
    md = new_root(keys, args.threshold, args.targets_threshold or args.threshold,
                  _now() + timedelta(days=args.expires_days))
    _signers(args, md)
    md.to_file(args.out)
    print(f'wrote {args.out}: root v1, {len(keys)} keys, threshold {args.threshold}; unsigned')
    return 0


def cmd_root_sign(args) -> int:
    md = load_root(_read(args.root, MAX_ROOT_BYTES))
    sign(md, load_signer(Path(args.key)))
    Path(args.root).write_bytes(md.to_bytes())
    print(f'signed {args.root} (v{md.signed.version}); {len(md.signatures)} signature(s)')
    return 0


def cmd_root_rotate(args) -> int:
    old = load_root(_read(args.old, MAX_ROOT_BYTES))
    keys = [load_public(Path(p)) for p in args.key]
    md = new_root(keys, args.threshold, args.targets_threshold or args.threshold,
                  _now() + timedelta(days=args.expires_days), version=old.signed.version + 1)
    _signers(args, md, old)
    md.to_file(args.out)
    print(f'wrote {args.out}: root v{md.signed.version}; it needs signatures by the threshold of '
          f'the old root ({old.signed.roles["root"].threshold}) and of the new one '
          f'({args.threshold}): `flywheel root sign {args.out} --key ...`')
    return 0


def cmd_root_verify(args) -> int:
    new = load_root(_read(args.root, MAX_ROOT_BYTES))
    if args.old:
        verify_rotation(load_root(_read(args.old, MAX_ROOT_BYTES)), new, _now())
        print(f'OK: root v{new.signed.version} may replace v{new.signed.version - 1}')
        return 0
    check_self_signed(new, _now())
    role = new.signed.roles['root']
    print(f'OK (first install): root v{new.signed.version} carries the threshold of its own keys '
          f'({role.threshold} of {len(role.keyids)}) and has not expired. Only self-consistency '
          'was checked: anyone can make a self-signed root. Before installing it, confirm these '
          'key ids with their operators over another channel:')
    for keyid in sorted(new.signed.keys):
        print(f'  {keyid}')
    return 0


def _client(verb: str):
    def run(args) -> int:
        from flywheel.ros import release_client   # needs ROS; the offline commands do not
        return getattr(release_client, verb)(args)
    return run


def _rollout(args) -> int:
    if args.action != 'status' and not args.key:
        raise InputError(f'rollout {args.action}: --key is required (a signed request)')
    return _client('rollout')(args)


def add_commands(sub) -> None:
    keygen = sub.add_parser('keygen', help='create an operator signing key (Ed25519)')
    keygen.add_argument('out', help='private key file to write (the .pub.json goes beside it)')
    keygen.set_defaults(func=cmd_keygen)

    release = sub.add_parser('release', help='build, sign, verify and push Oracle releases')
    verbs = release.add_subparsers(dest='verb', required=True, metavar='VERB')
    build = verbs.add_parser('build', help='bundle an Oracle spec as an unsigned release')
    build.add_argument('spec', help='the Oracle spec (YAML) to release')
    build.add_argument('--number', type=RELEASE_NUMBER, required=True,
                       help=f'release number (1..{MAX_RELEASE_NUMBER}), strictly above every '
                       'release the robot has installed')
    build.add_argument('--version', help="check that the spec's Oracle version is this")
    build.add_argument('--parent', default='', help='the Oracle version this release refines')
    build.add_argument('--expires-days', type=DAYS, default=30.0,
                       help=f'the release expires this many days from now (0 < d <= '
                       f'{MAX_DAYS:g}; default 30)')
    build.add_argument('--root', help='a rotated trust root (signed by the old and new '
                       'thresholds) to ship with the release; the release pins it')
    build.add_argument('--plan', metavar='FILE',
                       help='the staged rollout plan (YAML like config/rollout.yaml; '
                       '`stages: [full]` installs at once) the release carries, signed with it '
                       "(default: none, the robot's default plan applies)")
    build.add_argument('--regression', metavar='FILE',
                       help='the regression suite (YAML: golden proposals that must stay '
                       'allowed, incidents that must be blocked) the robot runs before staging '
                       'the release; it must pass 100 %%')
    build.add_argument('--out', required=True, help='bundle file to write (.tar.gz)')
    build.set_defaults(func=cmd_build)
    sign_ = verbs.add_parser('sign', help='append your signature to a release')
    sign_.add_argument('bundle', help='the release bundle; rewritten in place')
    sign_.add_argument('--key', required=True, help='your private key (PEM)')
    sign_.set_defaults(func=cmd_sign)
    verify = verbs.add_parser('verify', help='check a release exactly as governance will')
    verify.add_argument('bundle', help='the release bundle')
    verify.add_argument('--root', required=True, help="the robot's trusted root.json")
    installed = verify.add_mutually_exclusive_group(required=True)
    installed.add_argument('--installed', type=INSTALLED_NUMBER,
                           help='the highest release number the robot has ever installed '
                           '(0 for none); a release at or below it is a replay')
    installed.add_argument('--status', metavar='FILE',
                           help='read it from the output of `flywheel status --json`')
    verify.add_argument('--max-bytes', type=int_in(1024, 1 << 30), default=MAX_BUNDLE_BYTES,
                        help="governance's max_bundle_bytes (default "
                        f'{MAX_BUNDLE_BYTES})')
    verify.set_defaults(func=cmd_verify)
    push = verbs.add_parser('push', help='submit a signed release to the running governance '
                            'node and wait for its verdict')
    push.add_argument('bundle', help='the signed release bundle')
    push.add_argument('--timeout', type=SECONDS, default=10.0,
                      help='seconds to wait for governance to answer (default 10); if it has '
                      'not answered by then it may still install the release: check '
                      '`flywheel status`')
    push.add_argument('--namespace', default='',
                      help='the graph\'s ROS namespace, e.g. /robot_1 (default: none)')
    push.set_defaults(func=_client('push'))

    status = sub.add_parser('status', help='what governance has installed and the Gate accepts')
    status.add_argument('--timeout', type=SECONDS, default=10.0,
                        help='seconds to wait for governance to answer (default 10)')
    status.add_argument('--json', action='store_true',
                        help='print the status as JSON (`release verify --status` reads it)')
    status.add_argument('--namespace', default='',
                      help='the graph\'s ROS namespace, e.g. /robot_1 (default: none)')
    status.set_defaults(func=_client('status'))
    rollback = sub.add_parser('rollback', help='return to the previous release (signed request)')
    rollback.add_argument('--key', required=True, help='a root operator private key (PEM)')
    rollback.add_argument('--to', type=RELEASE_NUMBER,
                          help='release number (default: the previous one, asked of governance)')
    rollback.add_argument('--ttl', type=positive_float(3600.0), default=60.0,
                          help='the signed request is valid this long, seconds (<= 3600; '
                          'default 60)')
    rollback.add_argument('--timeout', type=SECONDS, default=10.0,
                          help='seconds to wait for governance to answer (default 10)')
    rollback.add_argument('--namespace', default='',
                      help='the graph\'s ROS namespace, e.g. /robot_1 (default: none)')
    rollback.set_defaults(func=_client('rollback'))

    rollout = sub.add_parser('rollout', help='the staged rollout of a candidate release: '
                             'status, or a signed promote (the current stage passes) or abort')
    rollout.add_argument('action', choices=['status', 'promote', 'abort'])
    rollout.add_argument('--key', help='a root operator private key (PEM); promote and abort '
                         'are signed requests')
    rollout.add_argument('--number', type=RELEASE_NUMBER, default=0,
                         help='the candidate release number (default: asked of governance)')
    rollout.add_argument('--ttl', type=positive_float(3600.0), default=60.0,
                         help='the signed request is valid this long, seconds (<= 3600; '
                         'default 60)')
    rollout.add_argument('--timeout', type=SECONDS, default=10.0,
                         help='seconds to wait for governance to answer (default 10)')
    rollout.add_argument('--namespace', default='',
                         help='the graph\'s ROS namespace, e.g. /robot_1 (default: none)')
    rollout.set_defaults(func=_rollout)

    root = sub.add_parser('root', help='create, sign, rotate and verify the trust root')
    verbs = root.add_subparsers(dest='verb', required=True, metavar='VERB')
    init = verbs.add_parser('init', help='a first trust root (v1) from operator public keys')
    rotate = verbs.add_parser('rotate', help='the next trust root, to be signed by old and new')
    for parser in (init, rotate):
        parser.add_argument('--key', action='append', required=True,
                            help="an operator's .pub.json (repeat for each operator)")
        parser.add_argument('--threshold', type=int_in(1, 1000), required=True,
                            help='signatures a root rotation needs (1..number of keys)')
        parser.add_argument('--targets-threshold', type=int_in(1, 1000),
                            help='signatures a release needs (default: --threshold)')
        parser.add_argument('--expires-days', type=DAYS, default=365.0,
                            help=f'the root expires this many days from now (0 < d <= '
                            f'{MAX_DAYS:g}; default 365)')
        parser.add_argument('--out', required=True, help='root.json file to write (unsigned)')
        parser.add_argument('--oracle-key', action='append', default=[], metavar='FILE',
                            help="a .pub.json whose key signs the Oracle's verdicts (from "
                            '`flywheel keys init` on the robot; repeatable)')
        parser.add_argument('--governance-key', action='append', default=[], metavar='FILE',
                            help="a .pub.json whose key signs governance's status and "
                            'release directives (repeatable)')
        parser.add_argument('--verifier-key', action='append', default=[], metavar='FILE',
                            help="a .pub.json whose key signs the verifier's answers to "
                            'escalations (repeatable)')
        parser.add_argument('--proposer-key', action='append', default=[],
                            metavar='ID=FILE', help='proposals from proposer ID must be signed '
                            'by this key (repeatable); a rotation naming no node key keeps the '
                            "old root's")
    init.set_defaults(func=cmd_root_init)
    rotate.add_argument('--old', required=True, help='the current root.json')
    rotate.set_defaults(func=cmd_root_rotate)
    rsign = verbs.add_parser('sign', help='append your signature to a root')
    rsign.add_argument('root', help='the root.json; rewritten in place')
    rsign.add_argument('--key', required=True, help='your private key (PEM)')
    rsign.set_defaults(func=cmd_root_sign)
    rverify = verbs.add_parser('verify', help='check a rotation (--old), or a first root '
                               '(--first-install)')
    rverify.add_argument('root', help='the root.json to check')
    how = rverify.add_mutually_exclusive_group(required=True)
    how.add_argument('--old', help='the root it replaces: checks the thresholds of old and new')
    how.add_argument('--first-install', action='store_true',
                     help='there is no old root (bootstrapping a robot): checks only that the '
                     'root carries its own threshold; confirm its key ids out of band')
    rverify.set_defaults(func=cmd_root_verify)
