"""flywheel/ros/convert.py: the Gate's odometry read from its bytes is what rclpy reads, and
malformed or oversize bytes are refused before anything is built."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.cdr import WireError

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry as OdometryMsg  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402

from flywheel.ros.convert import (odometry_from_bytes, odometry_from_msg,  # noqa: E402
                                  to_time)

frame = st.text(st.characters(codec='utf-8', exclude_categories=('Cs',),
                              exclude_characters='\x00'), max_size=32)
number = st.floats(allow_nan=False, allow_infinity=True)


def odometry(x=1.5, y=1.0, yaw=0.3, v=0.5, w=0.1, stamp_ns=10**18, frame_id='map',
             child='base_link') -> OdometryMsg:
    msg = OdometryMsg()
    msg.header.stamp = to_time(stamp_ns)
    msg.header.frame_id, msg.child_frame_id = frame_id, child
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = v, w
    msg.pose.covariance[0] = msg.twist.covariance[35] = 0.01
    return msg


@settings(max_examples=200, deadline=None)
@given(number, number, st.floats(-3.1, 3.1), number, number, st.integers(0, 2**62),
       frame, frame, st.lists(number, min_size=4, max_size=4))
def test_rclpy_bytes_read_as_rclpy_reads_them(x, y, yaw, v, w, stamp_ns, frame_id, child, q):
    msg = odometry(x, y, yaw, v, w, stamp_ns, frame_id, child)
    if all(math.isfinite(c) for c in q):        # any quaternion, not only unit ones
        o = msg.pose.pose.orientation
        o.x, o.y, o.z, o.w = q
    read = odometry_from_bytes(serialize_message(msg))
    expected = odometry_from_msg(msg)
    assert (read.stamp_ns, read.frame_id) == (expected.stamp_ns, expected.frame_id)
    assert [float(getattr(read.state, f)).hex() for f in 'x y yaw v w'.split()] == [
        float(getattr(expected.state, f)).hex() for f in 'x y yaw v w'.split()]


def test_an_oversize_frame_is_refused():
    with pytest.raises(WireError, match='header.frame_id: 257 bytes > 256') as err:
        odometry_from_bytes(serialize_message(odometry(frame_id='m' * 257)))
    assert err.value.oversize
    with pytest.raises(WireError, match='child_frame_id: 300 bytes > 256'):
        odometry_from_bytes(serialize_message(odometry(child='b' * 300)))


def test_every_truncation_is_refused():
    data = serialize_message(odometry())
    for cut in range(len(data)):
        with pytest.raises(WireError):
            odometry_from_bytes(data[:cut])


def test_big_endian_or_garbage_is_refused():
    with pytest.raises(WireError, match='not little-endian CDR'):
        odometry_from_bytes(b'\x00\x00\x00\x00' + bytes(800))
