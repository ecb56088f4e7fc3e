"""`flywheel keygen`, `flywheel release build|sign|verify`, `flywheel root init|sign|rotate|verify`:
the operator's offline commands (no ROS needed). `push`, `status` and `rollback` talk to the graph.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from flywheel.errors import FlywheelError, ReleaseError
from flywheel.release.bundle import build_bundle, sign_bundle, spec_version, verify_bundle
from flywheel.release.keys import generate_key, load_public, load_signer, public_path
from flywheel.release.root import check_self_signed, load_root, new_root, sign, verify_rotation


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise FlywheelError(f'{path}: {exc.strerror}') from exc


def cmd_keygen(args) -> int:
    private = Path(args.out)
    if private.exists():
        raise FlywheelError(f'{private} exists; refusing to overwrite a key')
    key = generate_key(private)
    print(f'wrote {private} (keep it secret) and {public_path(private)}; key id {key.keyid}')
    return 0


def cmd_build(args) -> int:
    spec = _read(args.spec)
    bundle = build_bundle(spec, args.number, _now() + timedelta(days=args.expires_days),
                          parent=args.parent, root=_read(args.root) if args.root else None)
    version = spec_version(spec)
    if args.version and args.version != version:
        raise ReleaseError(f'--version {args.version}, but the spec says {version!r}')
    Path(args.out).write_bytes(bundle)
    print(f'wrote {args.out}: Oracle {version}, release number {args.number}, unsigned; '
          f'now `flywheel release sign {args.out} --key ...` by enough operators')
    return 0


def cmd_sign(args) -> int:
    signer = load_signer(Path(args.key))
    Path(args.bundle).write_bytes(sign_bundle(_read(args.bundle), signer))
    print(f'signed {args.bundle} with key {signer.public_key.keyid}')
    return 0


def cmd_verify(args) -> int:
    root = load_root(_read(args.root))
    release = verify_bundle(_read(args.bundle), root, _now(), args.installed)
    print(f'OK: Oracle {release.oracle_version} (parent {release.parent_version or "-"}), '
          f'release number {release.number}, signed by {len(release.signed_by)} trusted key(s), '
          f'expires {release.expires.isoformat()}, sha256 {release.bundle_sha256}')
    return 0


def cmd_root_init(args) -> int:
    keys = [load_public(Path(p)) for p in args.key]
    md = new_root(keys, args.threshold, args.targets_threshold or args.threshold,
                  _now() + timedelta(days=args.expires_days))
    md.to_file(args.out)
    print(f'wrote {args.out}: root v1, {len(keys)} keys, threshold {args.threshold}; unsigned')
    return 0


def cmd_root_sign(args) -> int:
    md = load_root(_read(args.root))
    sign(md, load_signer(Path(args.key)))
    Path(args.root).write_bytes(md.to_bytes())
    print(f'signed {args.root} (v{md.signed.version}); {len(md.signatures)} signature(s)')
    return 0


def cmd_root_rotate(args) -> int:
    old = load_root(_read(args.old))
    keys = [load_public(Path(p)) for p in args.key]
    md = new_root(keys, args.threshold, args.targets_threshold or args.threshold,
                  _now() + timedelta(days=args.expires_days), version=old.signed.version + 1)
    md.to_file(args.out)
    print(f'wrote {args.out}: root v{md.signed.version}; it needs signatures by the threshold of '
          f'the old root ({old.signed.roles["root"].threshold}) and of the new one '
          f'({args.threshold}): `flywheel root sign {args.out} --key ...`')
    return 0


def cmd_root_verify(args) -> int:
    new = load_root(_read(args.root))
    if args.old:
        verify_rotation(load_root(_read(args.old)), new, _now())
        print(f'OK: root v{new.signed.version} may replace v{new.signed.version - 1}')
    else:
        check_self_signed(new, _now())
        print(f'OK: root v{new.signed.version} carries its own threshold')
    return 0


def _client(verb: str):
    def run(args) -> int:
        from flywheel.ros import release_client   # needs ROS; the offline commands do not
        return getattr(release_client, verb)(args)
    return run


def add_commands(sub) -> None:
    keygen = sub.add_parser('keygen', help='create an operator signing key (Ed25519)')
    keygen.add_argument('out', help='private key file to write (the .pub.json goes beside it)')
    keygen.set_defaults(func=cmd_keygen)

    release = sub.add_parser('release', help='build, sign and verify Oracle releases')
    verbs = release.add_subparsers(dest='verb', required=True)
    build = verbs.add_parser('build', help='bundle an Oracle spec as an unsigned release')
    build.add_argument('spec')
    build.add_argument('--number', type=int, required=True,
                       help='release number, strictly above the installed one')
    build.add_argument('--version', help="check the spec's Oracle version is this")
    build.add_argument('--parent', default='', help='the Oracle version this release refines')
    build.add_argument('--expires-days', type=float, default=30.0)
    build.add_argument('--root', help='a rotated trust root to ship with the release')
    build.add_argument('--out', required=True)
    build.set_defaults(func=cmd_build)
    sign_ = verbs.add_parser('sign', help='append your signature to a release')
    sign_.add_argument('bundle')
    sign_.add_argument('--key', required=True, help='your private key')
    sign_.set_defaults(func=cmd_sign)
    verify = verbs.add_parser('verify', help='check a release as the robot will')
    verify.add_argument('bundle')
    verify.add_argument('--root', required=True, help='the trusted root.json')
    verify.add_argument('--installed', type=int, default=0,
                        help='the release number installed on the robot')
    verify.set_defaults(func=cmd_verify)
    push = verbs.add_parser('push', help='submit a signed release to the running governance node')
    push.add_argument('bundle')
    push.add_argument('--timeout', type=float, default=10.0)
    push.set_defaults(func=_client('push'))

    status = sub.add_parser('status', help='what governance has installed and the Gate accepts')
    status.add_argument('--timeout', type=float, default=10.0)
    status.set_defaults(func=_client('status'))
    rollback = sub.add_parser('rollback', help='return to the previous release (signed request)')
    rollback.add_argument('--key', required=True, help='a root operator private key')
    rollback.add_argument('--to', type=int, help='release number (default: the previous one)')
    rollback.add_argument('--ttl', type=float, default=60.0, help='request valid this long (s)')
    rollback.add_argument('--timeout', type=float, default=10.0)
    rollback.set_defaults(func=_client('rollback'))

    root = sub.add_parser('root', help='create, sign, rotate and verify the trust root')
    verbs = root.add_subparsers(dest='verb', required=True)
    init = verbs.add_parser('init', help='a first trust root (v1) from operator public keys')
    rotate = verbs.add_parser('rotate', help='the next trust root, to be signed by old and new')
    for parser in (init, rotate):
        parser.add_argument('--key', action='append', required=True, help='a .pub.json (repeat)')
        parser.add_argument('--threshold', type=int, required=True)
        parser.add_argument('--targets-threshold', type=int,
                            help='signatures a release needs (default: --threshold)')
        parser.add_argument('--expires-days', type=float, default=365.0)
        parser.add_argument('--out', required=True)
    init.set_defaults(func=cmd_root_init)
    rotate.add_argument('--old', required=True, help='the current root.json')
    rotate.set_defaults(func=cmd_root_rotate)
    rsign = verbs.add_parser('sign', help='append your signature to a root')
    rsign.add_argument('root')
    rsign.add_argument('--key', required=True)
    rsign.set_defaults(func=cmd_root_sign)
    rverify = verbs.add_parser('verify', help='check a root (or a rotation with --old)')
    rverify.add_argument('root')
    rverify.add_argument('--old')
    rverify.set_defaults(func=cmd_root_verify)
