"""The client side of `flywheel release push`, `flywheel status` and `flywheel rollback`: one
service call each to the governance node."""
from __future__ import annotations

import secrets
import time
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from alignment_flywheel.srv import GetStatus, Rollback, SubmitRelease
from flywheel.errors import FlywheelError, GraphError, ReleaseError
from flywheel.release.governor import rollback_message
from flywheel.release.keys import load_signer
from flywheel.ros import topics


def _call(service_type, name: str, request, timeout: float):
    context = Context()
    rclpy.init(context=context, args=[])
    node = rclpy.create_node('flywheel_operator', context=context)
    try:
        client = node.create_client(service_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise GraphError(f'no governance node answers {name} (is it running and active, on '
                             'this ROS_DOMAIN_ID?)')
        future = client.call_async(request)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            raise GraphError(f'{name}: no answer within {timeout} s')
        return future.result()
    finally:
        node.destroy_node()
        context.try_shutdown()


def push(args) -> int:
    try:
        bundle = Path(args.bundle).read_bytes()
    except OSError as exc:
        raise FlywheelError(f'{args.bundle}: {exc.strerror}') from exc
    request = SubmitRelease.Request()
    request.bundle = list(bundle)
    reply = _call(SubmitRelease, topics.SUBMIT_RELEASE, request, args.timeout)
    if not reply.accepted:
        raise ReleaseError(f'refused by governance: {reply.reason}')
    print(f'installed release {reply.number}: the Oracle now swaps to {reply.oracle_version}')
    return 0


def status(args) -> int:
    s = _call(GetStatus, topics.GET_STATUS, GetStatus.Request(), args.timeout).status
    print(f'governance {s.state}; active Oracle {s.active_version or "none"} (release '
          f'{s.active_number}); previous {s.previous_version or "none"} (release '
          f'{s.previous_number}); accepted by the Gate: {", ".join(s.accepted_versions) or "none"}'
          f'; trust root v{s.root_version}'
          + (f'\nlast rejection: {s.last_rejection}' if s.last_rejection else ''))
    return 0


def rollback(args) -> int:
    signer = load_signer(Path(args.key))
    to_number = args.to
    if to_number is None:
        to_number = _call(GetStatus, topics.GET_STATUS, GetStatus.Request(),
                          args.timeout).status.previous_number
        if not to_number:
            raise ReleaseError('governance retains no previous release to roll back to')
    nonce = secrets.token_hex(16)
    expires_ns = time.time_ns() + int(args.ttl * 1e9)
    request = Rollback.Request(key_id=signer.public_key.keyid, nonce=nonce,
                               expires_ns=expires_ns, to_number=to_number,
                               signature=signer.sign(rollback_message(nonce, expires_ns,
                                                                      to_number)).signature)
    reply = _call(Rollback, topics.ROLLBACK, request, args.timeout)
    if not reply.accepted:
        raise ReleaseError(f'rollback refused: {reply.reason}')
    print(f'rolled back: the Oracle now swaps to {reply.active_version}')
    return 0
