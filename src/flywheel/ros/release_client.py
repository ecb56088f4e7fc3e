"""The client side of `flywheel release push`, `flywheel status` and `flywheel rollback`: one
service call each to the governance node."""
from __future__ import annotations

import hashlib
import json
import secrets
import sys
import time
from pathlib import Path

from alignment_flywheel.srv import GetStatus, Rollback, SubmitRelease
from alignment_flywheel.srv import Rollout as RolloutSrv
from flywheel.errors import NodeTimeoutError, InputError, ReleaseError
from flywheel.release.governor import rollback_message
from flywheel.release.rollout import rollout_message
from flywheel.release.keys import load_signer
from flywheel.ros import client, topics


def governance(args, service: str) -> str:
    """The governance node's service in the graph's namespace (--namespace)."""
    return topics.service_of('governance', service, getattr(args, 'namespace', '') or '')


def _call(service_type, name: str, request, timeout: float):
    return client.call(service_type, name, request, timeout,
                       f'no governance node answers {name} (is it running and active, on this '
                       'ROS_DOMAIN_ID?)')


def push(args) -> int:
    try:
        bundle = Path(args.bundle).read_bytes()
    except OSError as exc:
        raise InputError(f'{args.bundle}: {exc.strerror}') from exc
    sha256 = hashlib.sha256(bundle).hexdigest()
    print(f'pushing {args.bundle} ({len(bundle)} bytes, sha256 {sha256}); waiting up to '
          f'{args.timeout:g} s for governance to verify it...', file=sys.stderr, flush=True)
    request = SubmitRelease.Request()
    request.bundle = list(bundle)
    try:
        reply = _call(SubmitRelease, governance(args, topics.SUBMIT_RELEASE), request, args.timeout)
    except NodeTimeoutError as exc:
        raise NodeTimeoutError(
            f'sent, but no verdict within {args.timeout:g} s: governance may still be verifying '
            f'and may still install it. Follow it with `flywheel status` (its active release, or '
            f'its last rejection naming sha256 {sha256[:16]}); a longer --timeout waits longer. '
            'Pushing it again once installed is refused as a replay.') from exc
    if not reply.accepted:
        raise ReleaseError(f'refused by governance: {reply.reason}')
    print(f'installed release {reply.number}: the Oracle now swaps to {reply.oracle_version}')
    return 0


def status(args) -> int:
    s = _call(GetStatus, governance(args, topics.GET_STATUS), GetStatus.Request(), args.timeout).status
    if getattr(args, 'json', False):
        print(json.dumps(status_fields(s), indent=2))
        return 0
    print(f'governance {s.state}; active Oracle {s.active_version or "none"} (release '
          f'{s.active_number}); previous {s.previous_version or "none"} (release '
          f'{s.previous_number}); highest installed {s.installed_max}; the Oracle runs '
          f'{s.oracle_running or "nothing reported"}; accepted by the Gate: '
          f'{", ".join(s.accepted_versions) or "none"}; trust root v{s.root_version}'
          + (f'\nlast rejection: {s.last_rejection}' if s.last_rejection else ''))
    return 0


def status_fields(msg) -> dict:
    """The plain fields of an OracleStatus (numbers, text, lists of text) for JSON."""
    out = {}
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if isinstance(value, (bool, int, str)) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value)):
            out[name] = value
    return out


def rollback(args) -> int:
    signer = load_signer(Path(args.key))
    to_number = args.to
    if to_number is None:
        to_number = _call(GetStatus, governance(args, topics.GET_STATUS), GetStatus.Request(),
                          args.timeout).status.previous_number
        if not to_number:
            raise ReleaseError('governance retains no previous release to roll back to')
    nonce = secrets.token_hex(16)
    expires_ns = time.time_ns() + int(args.ttl * 1e9)
    request = Rollback.Request(key_id=signer.public_key.keyid, nonce=nonce,
                               expires_ns=expires_ns, to_number=to_number,
                               signature=signer.sign(rollback_message(nonce, expires_ns,
                                                                      to_number)).signature)
    reply = _call(Rollback, governance(args, topics.ROLLBACK), request, args.timeout)
    if not reply.accepted:
        raise ReleaseError(f'rollback refused: {reply.reason}')
    print(f'rolled back: the Oracle now swaps to {reply.active_version}')
    return 0


def rollout(args) -> int:
    """`flywheel rollout status|promote|abort`."""
    status = _call(GetStatus, governance(args, topics.GET_STATUS), GetStatus.Request(),
                   args.timeout).status
    if args.action == 'status':
        print(status.rollout or f'no rollout: active Oracle {status.active_version or "none"} '
              f'(release {status.active_number})')
        return 0
    if not status.candidate_number and not status.rollout:
        raise ReleaseError('no rollout to ' + args.action)
    signer = load_signer(Path(args.key))
    number = status.candidate_number or args.number
    nonce = secrets.token_hex(16)
    expires_ns = time.time_ns() + int(args.ttl * 1e9)
    request = RolloutSrv.Request(
        action=args.action, key_id=signer.public_key.keyid, nonce=nonce, expires_ns=expires_ns,
        number=number, signature=signer.sign(rollout_message(args.action, nonce, expires_ns,
                                                             number)).signature)
    reply = _call(RolloutSrv, governance(args, topics.ROLLOUT), request, args.timeout)
    if not reply.accepted:
        raise ReleaseError(f'rollout {args.action} refused: {reply.reason}')
    print(f'rollout {args.action}: {reply.rollout or "done"}')
    return 0
