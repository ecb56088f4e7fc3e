"""The SafetySignals codec agrees with rclpy's serializer both ways, refuses oversize or malformed
bytes before converting them (naming the field, and the proposal once read), and never writes
bytes a reader would refuse."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.cdr import WireError
from flywheel.signals import Evidence, EvidenceKind, EvidenceStatus, SafetySignals
from flywheel.signals_wire import MAX_EVIDENCE, decode_signals, encode_signals

rclpy = pytest.importorskip('rclpy')
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from alignment_flywheel.msg import SafetySignals as SignalsMsg  # noqa: E402
from flywheel.ros.convert import signals_from_msg, signals_to_msg  # noqa: E402

text = st.characters(codec='utf-8', exclude_categories=('Cs',), exclude_characters='\x00')
ident = st.text(text, max_size=16)            # at most 64 bytes in UTF-8
number = st.floats(allow_nan=True, allow_infinity=True)
stamp = st.integers(-2**31 * 10**9, 2**31 * 10**9 - 1)


@st.composite
def signals(draw):
    evidence = tuple(Evidence(draw(st.text(text, max_size=32)), draw(st.sampled_from(EvidenceKind)),
                              draw(number), draw(number), draw(number))
                     for _ in range(draw(st.integers(0, 5))))
    return SafetySignals(
        draw(ident), draw(ident), draw(ident), draw(ident), draw(stamp),
        *(draw(number) for _ in range(9)), draw(st.sampled_from(EvidenceStatus)), evidence,
        draw(st.integers(0, 2**31 * 10**9 - 1)), draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(0, 2**64 - 1)), draw(number), draw(number), draw(number), draw(ident),
        draw(st.binary(max_size=64)))


def same(a: SafetySignals, b: SafetySignals) -> None:
    """Equal in every field the message carries (NaN equal to itself, bit for bit)."""
    assert a.canonical_bytes() == b.canonical_bytes()
    assert (a.evaluation_ns, a.key_id, a.signature) == (b.evaluation_ns, b.key_id, b.signature)


def honest(**changes) -> SafetySignals:
    s = SafetySignals('proposer/1', 'ab' * 32, '1.0.0', '', 10**18, 0.9, 0.1, 0.0, 1.5,
                      math.inf, 0.1, 0.5, 0.2, 0.5, EvidenceStatus.COMPLETE,
                      (Evidence('obstacle:shelf_a', EvidenceKind.CLEARANCE, 0.3, 2.0, 1.0),),
                      250_000, 7, 3, 0.3, 0.05, 0.05, 'k' * 64, bytes(range(64)))
    return replace(s, **changes)


@settings(max_examples=200, deadline=None)
@given(signals())
def test_rclpy_bytes_decode_to_the_same_signals(s):
    msg = signals_to_msg(s, 'map')
    same(decode_signals(serialize_message(msg)), signals_from_msg(msg))


@settings(max_examples=200, deadline=None)
@given(signals(), st.text(text, max_size=64))
def test_encoded_bytes_deserialize_in_rclpy(s, frame_id):
    msg = deserialize_message(encode_signals(s, frame_id), SignalsMsg)
    same(signals_from_msg(msg), s)
    assert msg.header.frame_id == frame_id


def test_stamps_beyond_int32_seconds_are_clamped_as_rclpy_conversion_clamps_them():
    s = honest(stamp_ns=2**40 * 10**9)
    assert (decode_signals(encode_signals(s, 'map')).stamp_ns
            == signals_from_msg(signals_to_msg(s, 'map')).stamp_ns == (2**31 - 1) * 10**9
            + 999_999_999)


@pytest.mark.parametrize('field, bound', [
    ('proposal_id', 64), ('proposal_digest', 64), ('oracle_version', 64),
    ('overlay_version', 64), ('key_id', 64)])
def test_an_oversize_string_is_refused_naming_it(field, bound):
    data = serialize_message(signals_to_msg(honest(**{field: 'x' * (bound + 1)}), 'map'))
    with pytest.raises(WireError, match=f'{field}: {bound + 1} bytes > {bound}') as err:
        decode_signals(data)
    assert err.value.oversize
    if field != 'proposal_id':
        assert err.value.proposal_id == 'proposer/1'


def test_an_oversize_rule_id_is_refused():
    evidence = (Evidence('r' * 129, EvidenceKind.SPEED, 1.0),)
    with pytest.raises(WireError, match='evidence.rule_id: 129 bytes > 128') as err:
        decode_signals(serialize_message(signals_to_msg(honest(evidence=evidence), 'map')))
    assert err.value.oversize


def test_an_oversize_frame_id_is_refused():
    with pytest.raises(WireError, match='header.frame_id: 257 bytes > 256'):
        decode_signals(serialize_message(signals_to_msg(honest(), 'f' * 257)))


def evidence_count_at(data: bytes, count: int) -> int:
    """Where the evidence count of ``data`` is (the first rule_id is 'r'): the status byte is
    8-aligned after the twelve float64 fields, three bytes of padding, then the count."""
    return data.index(count.to_bytes(4, 'little') + (2).to_bytes(4, 'little') + b'r\x00')


def test_more_evidence_than_the_message_holds_is_refused_before_it_is_read():
    """rclpy refuses to serialize 65 items: the bytes of 64, the count raised to 65."""
    full = honest(evidence=(Evidence('r', EvidenceKind.SPEED, 1.0),) * MAX_EVIDENCE)
    data = bytearray(encode_signals(full, 'map'))
    at = evidence_count_at(bytes(data), MAX_EVIDENCE)
    data[at:at + 4] = (MAX_EVIDENCE + 1).to_bytes(4, 'little')
    with pytest.raises(WireError, match='evidence: 65 items > 64') as err:
        decode_signals(bytes(data))
    assert err.value.oversize and err.value.proposal_id == 'proposer/1'


def test_an_evidence_count_larger_than_the_buffer_is_refused_not_read():
    data = bytearray(encode_signals(honest(evidence=(Evidence('r', EvidenceKind.SPEED, 1.0),)),
                                    'map'))
    at = evidence_count_at(bytes(data), 1)
    data[at:at + 4] = (MAX_EVIDENCE).to_bytes(4, 'little')
    with pytest.raises(WireError, match='evidence: truncated'):
        decode_signals(bytes(data))


def test_an_oversize_signature_is_refused():
    data = bytearray(encode_signals(honest(signature=b''), 'map'))
    data[-4:] = (65).to_bytes(4, 'little')
    with pytest.raises(WireError, match='signature: 65 items > 64') as err:
        decode_signals(bytes(data) + bytes(65))
    assert err.value.oversize


@pytest.mark.parametrize('kind', ['status', 'kind'])
def test_a_status_or_kind_outside_the_contract_is_refused(kind):
    data = bytearray(encode_signals(honest(evidence=(Evidence('r', EvidenceKind.SPEED, 1.0),)),
                                    'map'))
    if kind == 'status':
        at = evidence_count_at(bytes(data), 1) - 4      # the status byte, 3 bytes of padding
        data[at] = 9
        match = 'evidence_status: 9 is not a status'
    else:
        at = evidence_count_at(bytes(data), 1) + 4 + 4 + 2     # after the count and 'r'
        data[at] = 200
        match = 'evidence.kind: 200 is not a kind'
    with pytest.raises(WireError, match=match) as err:
        decode_signals(bytes(data))
    assert not err.value.oversize and err.value.proposal_id == 'proposer/1'


@pytest.mark.parametrize('cut', [0, 3, 10, 30, 100, 150, 200, 250, -1])
def test_truncated_bytes_are_refused(cut):
    data = encode_signals(honest(), 'map')
    with pytest.raises(WireError):
        decode_signals(data[:cut])


def test_every_truncation_is_refused_and_none_raises_anything_else():
    data = encode_signals(honest(), 'map')
    for cut in range(len(data)):
        with pytest.raises(WireError):
            decode_signals(data[:cut])


def test_length_fields_larger_than_the_buffer_are_refused_not_read():
    data = bytearray(encode_signals(honest(), 'map'))
    data[12:16] = (2**31).to_bytes(4, 'little')      # header.frame_id's length
    with pytest.raises(WireError, match='frame_id'):
        decode_signals(bytes(data))


def test_a_nul_inside_a_string_is_refused():
    data = bytearray(encode_signals(honest(oracle_version='1.0.0'), 'map'))
    data[data.index(b'1.0.0') + 1] = 0
    with pytest.raises(WireError, match='oracle_version: holds a NUL byte'):
        decode_signals(bytes(data))


def test_bytes_that_are_not_utf8_are_refused():
    data = bytearray(encode_signals(honest(oracle_version='1.0.0'), 'map'))
    data[data.index(b'1.0.0')] = 0xff
    with pytest.raises(WireError, match='oracle_version: not UTF-8'):
        decode_signals(bytes(data))


def test_big_endian_or_garbage_is_refused():
    with pytest.raises(WireError, match='not little-endian CDR'):
        decode_signals(b'\x00\x00\x00\x00' + bytes(300))


def test_trailing_bytes_are_ignored_as_rclpy_ignores_them():
    s = honest()
    same(decode_signals(encode_signals(s, 'map') + bytes(7)), s)


@pytest.mark.parametrize('change, match', [
    (dict(proposal_id='x' * 65), 'proposal_id: 65 bytes > 64'),
    (dict(key_id='é' * 33), 'key_id: 66 bytes > 64'),
    (dict(signature=bytes(65)), 'signature: 65 items > 64'),
    (dict(evidence=(Evidence('r' * 129, EvidenceKind.SPEED, 1.0),)),
     'evidence.rule_id: 129 bytes > 128'),
    (dict(evidence=(Evidence('r', EvidenceKind.SPEED, 1.0),) * 65), 'evidence: 65 items > 64'),
    (dict(oracle_version='a\x00b'), 'oracle_version: holds a NUL byte'),
])
def test_nothing_is_encoded_that_a_reader_would_refuse(change, match):
    with pytest.raises(ValueError, match=match):
        encode_signals(honest(**change), 'map')
