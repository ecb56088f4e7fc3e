"""The Gate -> output process hand-off: the last whole record decides, however the pipe splits
the bytes; anything that does not make sense is stop; the deadline is exact."""
from __future__ import annotations

import math

import pytest

from hypothesis import given, strategies as st

from flywheel.enforcement.handoff import BEAT, STOP, Holding, last_beat, record

NOW = 10**12


def test_a_command_is_in_force_until_its_deadline_then_stop():
    holding = Holding()
    holding.feed(record((0.5, 0.1), NOW + 300))
    assert holding.command_at(NOW) == (0.5, 0.1)
    assert holding.command_at(NOW + 299) == (0.5, 0.1)
    assert holding.command_at(NOW + 300) == STOP
    assert holding.wait_s(NOW + 100, 0.02) == pytest.approx(200e-9)   # wakes at the deadline
    assert holding.wait_s(NOW + 300, 0.02) == 0.02


def test_nothing_read_yet_is_stop():
    assert Holding().command_at(NOW) == STOP


def test_a_withdrawal_stops_at_once():
    holding = Holding()
    holding.feed(record((0.5, 0.0), NOW + 10**9))
    holding.feed(record(None))
    assert holding.command_at(NOW) == STOP


def test_non_finite_values_are_stop():
    for bad in ((math.nan, 0.0), (0.0, math.inf), (-math.inf, 0.0)):
        holding = Holding()
        holding.feed(record((0.5, 0.0), NOW + 10**9))
        holding.feed(record(bad, NOW + 10**9))
        assert holding.command_at(NOW) == STOP


@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(-2, 2), st.integers(1, 2**62)),
                min_size=1, max_size=20),
       st.lists(st.integers(1, 50), max_size=30))
def test_the_last_whole_record_decides_however_the_bytes_are_split(records, cuts):
    stream = b''.join(record((v, w), until) for v, w, until in records)
    holding, at = Holding(), 0
    for cut in cuts:
        holding.feed(stream[at:at + cut])
        at += cut
    holding.feed(stream[at:])
    v, w, until = records[-1]
    assert (holding.command, holding.until_ns) == ((v, w), until)


def test_a_partial_record_changes_nothing():
    holding = Holding()
    holding.feed(record((0.5, 0.0), NOW + 10**9))
    holding.feed(record(None)[:-1])
    assert holding.command_at(NOW) == (0.5, 0.0)


def test_the_latest_heartbeat_counts():
    assert last_beat(BEAT.pack(5) + BEAT.pack(9), 1) == 9
    assert last_beat(b'', 7) == 7
