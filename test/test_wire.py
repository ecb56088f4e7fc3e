"""The wire codec agrees with rclpy's serializer both ways, and refuses oversize or malformed bytes
before converting them, naming the proposal when it can."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.proposal import make_proposal
from flywheel.wire import MAX_POINTS, WireError, decode_proposal, encode_proposal
from test.helpers import straight

rclpy = pytest.importorskip('rclpy')
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from alignment_flywheel.msg import Proposal as ProposalMsg  # noqa: E402
from flywheel.ros.convert import proposal_from_msg, proposal_to_msg  # noqa: E402

finite = st.floats(-1e6, 1e6, allow_nan=False)
ident = st.text(st.characters(codec='utf-8', exclude_categories=('Cs',), exclude_characters='\x00'),
                max_size=20)


@st.composite
def proposals(draw):
    n = draw(st.integers(0, 30))
    states = np.array(draw(st.lists(st.tuples(finite, finite, st.floats(-3.1, 3.1), finite,
                                              finite), min_size=n, max_size=n)),
                      dtype=float).reshape(-1, 5)
    t_ns = np.array(draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n)), dtype=np.int64)
    return make_proposal(draw(ident), draw(ident), draw(st.integers(0, 2**64 - 1)),
                         draw(ident), draw(st.integers(0, (2**31 - 1) * 10**9)), t_ns, states,
                         (draw(finite), draw(finite)), draw(st.integers(0, 2**64 - 1)))


def same(a, b):
    assert (a.proposal_id, a.proposer_id, a.seq, a.epoch, a.frame_id, a.stamp_ns) == (
        b.proposal_id, b.proposer_id, b.seq, b.epoch, b.frame_id, b.stamp_ns)
    assert np.array_equal(a.t_ns, b.t_ns)
    np.testing.assert_allclose(a.states, b.states, rtol=0, atol=1e-9)
    assert a.command == b.command


@settings(max_examples=200, deadline=None)
@given(proposals())
def test_rclpy_bytes_decode_to_the_same_proposal(p):
    msg = proposal_to_msg(p)
    same(decode_proposal(serialize_message(msg)), proposal_from_msg(msg))


@settings(max_examples=200, deadline=None)
@given(proposals(), st.binary(max_size=64))
def test_encoded_bytes_deserialize_in_rclpy(p, signature):
    msg = deserialize_message(encode_proposal(replace(p, key_id='k', signature=signature)),
                              ProposalMsg)
    same(proposal_from_msg(msg), decode_proposal(encode_proposal(p)))
    assert msg.key_id == 'k' and bytes(msg.signature) == signature


def test_digest_is_the_same_either_way():
    p = straight(1.5, 1.0, 0.3, 0.5, seq=7, stamp_ns=10**18)
    via_rclpy = proposal_from_msg(deserialize_message(encode_proposal(p), ProposalMsg))
    assert decode_proposal(encode_proposal(p)).digest == via_rclpy.digest


def test_oversize_trajectory_is_refused_before_its_points_are_read():
    p = straight(1.5, 1.0, 0.0, 0.5, points=MAX_POINTS + 1, seq=3)
    with pytest.raises(WireError) as err:
        decode_proposal(encode_proposal(p))
    assert err.value.oversize and err.value.proposal_id == p.proposal_id


def test_a_node_limit_tighter_than_the_message_bound():
    with pytest.raises(WireError, match='trajectory: 21 items > 20') as err:
        decode_proposal(encode_proposal(straight(1.5, 1.0, 0.0, 0.5, points=21)), max_points=20)
    assert err.value.proposer_id == 'proposer'


def test_oversize_string_is_refused():
    p = make_proposal('x' * 65, 'proposer', 1, 'map', 0, [0], [[0, 0, 0, 0, 0]], (0, 0))
    with pytest.raises(WireError, match='proposal_id: 65 bytes > 64') as err:
        decode_proposal(encode_proposal(p))
    assert err.value.oversize


@pytest.mark.parametrize('cut', [0, 3, 10, 40, 200, -1])
def test_truncated_bytes_are_refused(cut):
    data = encode_proposal(straight(1.5, 1.0, 0.0, 0.5, points=3))
    with pytest.raises(WireError):
        decode_proposal(data[:cut])


def test_length_fields_larger_than_the_buffer_are_refused_not_read():
    data = bytearray(encode_proposal(straight(1.5, 1.0, 0.0, 0.5, points=3)))
    data[12:16] = (2**31).to_bytes(4, 'little')     # frame_id length
    with pytest.raises(WireError, match='frame_id'):
        decode_proposal(bytes(data))


def test_a_nul_inside_a_string_is_refused():
    p = make_proposal('a\x00b', 'proposer', 1, 'map', 0, [0], [[0, 0, 0, 0, 0]], (0, 0))
    with pytest.raises(WireError, match='NUL'):
        decode_proposal(encode_proposal(p))


def test_big_endian_or_garbage_is_refused():
    with pytest.raises(WireError, match='not little-endian CDR'):
        decode_proposal(b'\x00\x00\x00\x00' + bytes(100))


def test_non_finite_values_survive_decoding_for_the_checks_to_name():
    p = straight(1.5, 1.0, 0.0, 0.5, points=3)
    p.states[1, 0] = math.nan
    assert math.isnan(decode_proposal(encode_proposal(p)).states[1, 0])


def test_a_signature_covers_the_proposal_as_read_from_its_bytes(tmp_path):
    """Signed before encoding, an arbitrary heading came back one ulp off and every signature
    failed at the Gate."""
    from flywheel.auth import write_message_key
    key = write_message_key(tmp_path / 'proposer.pem')
    p = straight(1.5, 1.0, 0.123456789, 0.5, w=0.3)
    read = decode_proposal(encode_proposal(p, key))
    key.private.public_key().verify(read.signature, read.signing_bytes())
    assert read.key_id == key.key_id
