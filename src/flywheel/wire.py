"""Proposals straight from and to their serialized bytes (little-endian CDR, as ROS 2's DDS sends
them), bounded before anything is built.

Why not rclpy's own conversion: it builds about eight Python objects per trajectory point (0.4 ms
for 20 points, seconds for the 10^5 points an adversary can send) before any bound can be checked.
Here the header and ids are read first, every length is checked against its bound before the
bytes behind it are touched, and the points are read as one numpy view: a proposal of any size
costs microseconds to accept or refuse. A refused message still yields the proposal id (when
it could be read) so the refusal is a decision about that proposal.

The layout is that of msg/Proposal.msg; test/test_wire.py holds this module to rclpy's serializer.
The reader and writer underneath are flywheel/cdr.py.
"""
from __future__ import annotations

import struct

import numpy as np

from flywheel.cdr import CDR_LE, Reader, WireError
from flywheel.proposal import Proposal

# WireError is the nodes' too: they import it from here with decode_proposal.
__all__ = ['CDR_LE', 'MAX_POINTS', 'WireError', 'decode_proposal', 'encode_proposal']

MAX_ID = 64               # proposal_id, proposer_id, key_id (msg bounds)
MAX_FRAME_ID = 256
MAX_SIGNATURE = 64
MAX_POINTS = 1000         # TrajectoryPoint[<=1000]
# One TrajectoryPoint: Pose (7 float64), Twist (6 float64), Duration (int32 sec, uint32 nanosec).
POINT = np.dtype([('px', '<f8'), ('py', '<f8'), ('pz', '<f8'), ('qx', '<f8'), ('qy', '<f8'),
                  ('qz', '<f8'), ('qw', '<f8'), ('vx', '<f8'), ('vy', '<f8'), ('vz', '<f8'),
                  ('wx', '<f8'), ('wy', '<f8'), ('wz', '<f8'), ('sec', '<i4'), ('nsec', '<u4')])
assert POINT.itemsize == 112


def decode_proposal(data: bytes, max_points: int = MAX_POINTS) -> Proposal:
    """The Proposal in ``data``; WireError (with the ids read so far) if malformed or over a bound.

    ``max_points`` may be tighter than the message bound (a node's own limit); a longer trajectory
    is refused before its points are read.
    """
    r = Reader(data)
    stamp_ns = r.i32() * 1_000_000_000 + r.u32()
    frame_id = r.string('header.frame_id', MAX_FRAME_ID)
    r.proposal_id = r.string('proposal_id', MAX_ID)
    r.proposer_id = r.string('proposer_id', MAX_ID)
    epoch, seq = r.u64(), r.u64()
    n = r.length('trajectory', min(max_points, MAX_POINTS), POINT.itemsize)
    if n:
        r.align(8)
        if r.pos + n * POINT.itemsize > len(r.data):
            raise r.fail('trajectory: truncated')
        points = np.frombuffer(r.data, dtype=POINT, count=n, offset=r.pos)
        r.pos += n * POINT.itemsize
    else:
        points = np.zeros(0, dtype=POINT)
    linear = (r.f64(), r.f64(), r.f64())
    angular = (r.f64(), r.f64(), r.f64())
    key_id = r.string('key_id', MAX_ID)
    size = r.length('signature', MAX_SIGNATURE, 1)
    signature = bytes(r.data[r.pos:r.pos + size])
    qx, qy, qz, qw = points['qx'], points['qy'], points['qz'], points['qw']
    yaw = np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    states = np.column_stack([points['px'], points['py'], yaw, points['vx'], points['wz']])
    t_ns = points['sec'].astype(np.int64) * 1_000_000_000 + points['nsec'].astype(np.int64)
    return Proposal(r.proposal_id, r.proposer_id, seq, frame_id, stamp_ns, t_ns, states,
                    (float(linear[0]), float(angular[2])), epoch, key_id, signature)


def encode_proposal(p: Proposal, signer=None) -> bytes:
    """The CDR bytes a ROS 2 subscriber of alignment_flywheel/Proposal reads as ``p``.

    With ``signer`` (a flywheel.auth.MessageKey) the bytes carry its signature over the digest of
    the proposal *as read from these bytes*: headings travel as quaternions and can come back one
    ulp off, so signing the digest of ``p`` itself would fail at every reader. The key id and
    signature are the message's last fields, so signing never changes the bytes they cover.
    """
    head = _encode_body(p)
    if signer is None:
        return head + _encode_signature(p.key_id, p.signature)
    read = decode_proposal(head + _encode_signature('', b''))
    return head + _encode_signature(signer.key_id, signer.sign(read.signing_bytes()))


def _encode_body(p: Proposal) -> bytes:
    out = bytearray(CDR_LE + b'\x00\x00')

    def pad(size: int) -> None:
        out.extend(b'\x00' * ((-(len(out) - 4)) % size))

    def put(fmt: str, value) -> None:
        pad(struct.calcsize(fmt))
        out.extend(struct.pack(fmt, value))

    def put_string(text: str) -> None:
        raw = text.encode('utf-8')
        put('<I', len(raw) + 1)
        out.extend(raw + b'\x00')

    sec, nsec = divmod(p.stamp_ns, 1_000_000_000)
    put('<i', sec)
    put('<I', nsec)
    put_string(p.frame_id)
    put_string(p.proposal_id)
    put_string(p.proposer_id)
    put('<Q', p.epoch)
    put('<Q', p.seq)
    put('<I', len(p.t_ns))
    if len(p.t_ns):
        pad(8)
        points = np.zeros(len(p.t_ns), dtype=POINT)
        half = p.states[:, 2] / 2.0
        points['px'], points['py'] = p.states[:, 0], p.states[:, 1]
        points['qz'], points['qw'] = np.sin(half), np.cos(half)
        points['vx'], points['wz'] = p.states[:, 3], p.states[:, 4]
        sec, nsec = np.divmod(p.t_ns, 1_000_000_000)
        points['sec'], points['nsec'] = sec, nsec
        out.extend(points.tobytes())
    for value in (p.command[0], 0.0, 0.0, 0.0, 0.0, p.command[1]):
        put('<d', value)
    return bytes(out)


def _encode_signature(key_id: str, signature: bytes) -> bytes:
    """key_id (string) and signature (uint8 sequence) after the body, which ends 8-aligned (a
    float64), so the string's length needs no padding."""
    raw = key_id.encode('utf-8')
    return (struct.pack('<I', len(raw) + 1) + raw + b'\x00'
            + b'\x00' * ((-(len(raw) + 1)) % 4) + struct.pack('<I', len(signature)) + signature)
