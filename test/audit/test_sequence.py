"""The sequenced-stream rule: each record once, a gap for what never arrived, a new epoch its own
sequence; the state survives as a snapshot; completeness replays a ledger with the same rule."""
import pytest
from hypothesis import given, settings, strategies as st

from flywheel.audit.ledger import Ledger, connect
from flywheel.audit.record import RecordKind
from flywheel.audit.sequence import Gap, StreamPosition, Streams, check_completeness

D = '/gate_decisions'
E1, E2 = 1_795_000_000_000_000_000, 1_795_000_100_000_000_000


def at(seq, epoch=E1, stream=D):
    return StreamPosition(stream, epoch, seq)


def test_in_order_records_are_recorded_without_gaps():
    streams = Streams()
    assert [streams.admit(at(s)).record for s in (1, 2, 3)] == [True] * 3
    assert streams.position(D, E1) == (3, ())


def test_a_record_already_recorded_is_dropped():
    streams = Streams()
    for s in (1, 2, 3):
        streams.admit(at(s))
    assert not streams.admit(at(2)).record
    assert not streams.admit(at(3)).record
    assert streams.admit(at(4)).record


def test_a_jump_is_a_gap_naming_the_missing_range():
    streams = Streams()
    streams.admit(at(1))
    admission = streams.admit(at(5))
    assert admission.record and admission.gap == Gap(D, E1, 2, 4)
    assert admission.gap.count == 3
    assert streams.position(D, E1) == (5, ((2, 4),))


def test_a_first_record_after_seq_1_means_the_first_were_missed():
    admission = Streams().admit(at(7))
    assert admission.gap == Gap(D, E1, 1, 6)


def test_a_new_epoch_is_its_own_sequence():
    streams = Streams()
    for s in (1, 2, 3):
        streams.admit(at(s))
    assert streams.admit(at(1, E2)).gap is None          # the new session starts at 1
    assert streams.admit(at(4)).gap is None              # and the old one is untouched
    assert streams.admit(at(3, E2)).gap == Gap(D, E2, 2, 2)


def test_streams_are_independent():
    streams = Streams()
    streams.admit(at(1))
    assert streams.admit(at(1, stream='/governance/events')).gap is None


def test_a_late_record_fills_its_gap_once():
    streams = Streams()
    streams.admit(at(1))
    streams.admit(at(6))                                 # gap 2..5
    late = streams.admit(at(3))
    assert late.record and late.late
    assert streams.position(D, E1) == (6, ((2, 2), (4, 5)))
    assert not streams.admit(at(3)).record               # now it is recorded


def test_an_unnumbered_record_is_always_recorded():
    streams = Streams()
    assert streams.admit(at(0)).record and streams.admit(at(0)).record
    assert streams.position(D, E1) == (0, ())


@pytest.mark.parametrize('stream, epoch, seq', [('', 1, 1), (D, -1, 1), (D, 1, -2), (D, 1, 1.5)])
def test_a_bad_position_names_the_field(stream, epoch, seq):
    with pytest.raises(ValueError, match='stream|epoch/seq'):
        StreamPosition(stream, epoch, seq)


@pytest.mark.parametrize('first, last', [(0, 3), (5, 4)])
def test_a_gap_must_name_a_range(first, last):
    with pytest.raises(ValueError, match=f'{first}..{last}'):
        Gap(D, E1, first, last)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([E1, E2]), st.integers(0, 40)), max_size=60))
def test_any_delivery_records_every_seq_at_most_once_and_names_the_rest(deliveries):
    streams, recorded, gaps = Streams(), {}, {}
    for epoch, seq in deliveries:
        admission = streams.admit(at(seq, epoch))
        if admission.gap:
            gaps.setdefault(epoch, set()).update(range(admission.gap.first,
                                                       admission.gap.last + 1))
        if admission.record and seq:
            assert seq not in recorded.setdefault(epoch, set())
            recorded[epoch].add(seq)
    for epoch, seqs in recorded.items():
        last, missing = streams.position(D, epoch)
        still = {s for a, b in missing for s in range(a, b + 1)}
        assert seqs | still == set(range(1, last + 1))   # every number: recorded or missing
        assert not seqs & still
        assert still <= gaps.get(epoch, set())           # and what is missing was a gap
    # the state survives a snapshot exactly
    assert Streams.from_snapshot(streams.snapshot()).snapshot() == streams.snapshot()


def test_a_malformed_snapshot_is_refused():
    with pytest.raises(ValueError, match='malformed streams record'):
        Streams.from_snapshot({'streams': [{'name': D, 'epoch': 'x', 'last': 1, 'missing': []}]})


def write(ledger, kind, body, stamp=1):
    return ledger.append(kind, body, stamp)


def test_completeness_names_recorded_gaps_unrecorded_holes_and_duplicates(ledger_path, key):
    ledger = Ledger(ledger_path, key)
    decision = lambda s, e=E1: {'action': 'ALLOW', 'stream': at(s, e).body()}  # noqa: E731
    for s in (1, 2):
        write(ledger, RecordKind.DECISION, decision(s))
    write(ledger, RecordKind.GAP, Gap(D, E1, 3, 4).body())
    write(ledger, RecordKind.DECISION, decision(5))
    write(ledger, RecordKind.DECISION, decision(8))       # 6..7 missing, and no gap says so
    write(ledger, RecordKind.DECISION, decision(8))       # twice
    for s in (1, 2):
        write(ledger, RecordKind.DECISION, decision(s, E2))
    ledger.close()
    conn = connect(ledger_path, readonly=True)
    result = check_completeness(conn)
    conn.close()
    first, second = result.streams
    assert (first.epoch, first.recorded, first.last) == (E1, 4, 8)
    assert first.missing == ((3, 4), (6, 7)) and first.unrecorded == ((6, 7),)
    assert first.duplicates == 1 and not first.complete
    assert second.complete and second.recorded == 2
    assert not result.complete and result.missing == 4 and result.gap_records == 1
    assert 'MISSING 4: 3..4, 6..7' in first.line() and 'NO GAP RECORD for 6..7' in first.line()
    assert result.summary().startswith('INCOMPLETE')
