"""flywheel/ros/answer_msgs.py and overlay_msgs.py: a signed answer or overlay that crosses the
wire (serialized and read back as rclpy does) still verifies; what does not fit the message is
kept out of the signed content, so a tampered message fails its signature."""
from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone

import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from alignment_flywheel.msg import CoverageOverlay as OverlayMsg  # noqa: E402
from alignment_flywheel.msg import VerifierAnswer as AnswerMsg  # noqa: E402
from flywheel.auth import Keyring, load_message_key  # noqa: E402
from flywheel.provision import provision  # noqa: E402
from flywheel.release.overlay import CoverageOverlay, check_overlay  # noqa: E402
from flywheel.release.root import load_root  # noqa: E402
from flywheel.ros.answer_msgs import answer_from_msg, answer_record, answer_to_msg  # noqa: E402
from flywheel.ros.overlay_msgs import overlay_from_msg, overlay_to_msg  # noqa: E402
from flywheel.verifier_answer import VerifierAnswer  # noqa: E402


@pytest.fixture(scope='module')
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp('keys')
    provision(directory, datetime.now(timezone.utc))
    return directory


@pytest.fixture(scope='module')
def keyring(keys):
    return Keyring.from_root(load_root((keys / 'root.json').read_bytes()))


def signed(keys, value, key):
    k = load_message_key(keys / key)
    return dataclasses.replace(value, key_id=k.key_id, signature=k.sign(value.canonical_bytes()))


def across(msg, kind):
    return deserialize_message(serialize_message(msg), kind)


@pytest.mark.parametrize('answer', [
    VerifierAnswer('d' * 64, '1.0.0', True, 0, '', 0.123456789, 1.5, -2.25, 0.32,
                   (1.0, 0.5, 2.5, 1.5), 1_700_000_000_123_456_789, 7, 3, 2_500_000),
    VerifierAnswer('e' * 64, '', False, 7, 'unreadable proposal: truncated', math.nan,
                   math.nan, math.nan, 0.32, (math.nan,) * 4, 5, 7, 4),
    VerifierAnswer('f' * 64, '1.0.0', False, 3, 'incident@1: 0.1 m', math.inf, 2.0, 3.0, 0.32,
                   (1.0, 2.0, 3.0, 4.0), 5, 7, 5)], ids=['safe', 'unchecked', 'unsafe'])
def test_a_signed_answer_still_verifies_after_the_wire(keys, keyring, answer):
    sent = signed(keys, answer, 'verifier.pem')
    got = answer_from_msg(across(answer_to_msg(sent), AnswerMsg))
    assert got.canonical_bytes() == sent.canonical_bytes()
    assert keyring.check('verifier', got.key_id, got.signature, got.canonical_bytes()) is None
    assert got.elapsed_ns == sent.elapsed_ns
    record = answer_record(answer_to_msg(sent))
    assert record['signature'] == sent.signature.hex() and record['safe'] == sent.safe


def test_a_tampered_answer_fails_its_signature(keys, keyring):
    sent = signed(keys, VerifierAnswer('d' * 64, '1.0.0', False, 1, 'shelf_a', 0.0, 4.0, 3.0,
                                       0.32, (3.0, 2.0, 4.1, 3.5), 5, 7, 6), 'verifier.pem')
    msg = answer_to_msg(sent)
    msg.safe, msg.reason, msg.detail = True, 0, ''
    got = answer_from_msg(across(msg, AnswerMsg))
    assert keyring.check('verifier', got.key_id, got.signature,
                         got.canonical_bytes()) == 'bad signature by verifier key ' + \
        got.key_id[:16]


def test_a_signed_overlay_still_verifies_after_the_wire_and_a_tampered_one_does_not(keys,
                                                                                   keyring):
    o = signed(keys, CoverageOverlay(3, '1.0.0', 1, 1.0, ((1.0, 0.5, 2.5, 1.5),
                                                           (-1.0, -2.0, 0.0, 0.0)), 9, 4),
               'governance.pem')
    msg = overlay_to_msg(o, 10**18)
    assert msg.overlay_version == '3'
    got = overlay_from_msg(across(msg, OverlayMsg))
    assert got == o and check_overlay(got, keyring, applied=2) is None
    msg.regions = list(msg.regions) + [0.0, 0.0, 12.0]          # not a whole region
    assert overlay_from_msg(msg).regions == o.regions           # the partial one is dropped
    msg.regions = list(msg.regions)[:4] + [0.0, 0.0, 12.0, 8.0]
    assert 'bad signature' in check_overlay(overlay_from_msg(msg), keyring, applied=2)
