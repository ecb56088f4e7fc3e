"""The coverage overlay: governance counts only safe answers signed by a verifier key, in
sequence, about the active release; the Oracle applies only signed, newer overlays for the release
it runs; the overlay only raises coverage, and a verified situation stops escalating."""
from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone

import numpy as np
import pytest

from flywheel.auth import Keyring, load_message_key, write_message_key
from flywheel.enforcement.decision import Action, Reason
from flywheel.oracle.oracle import Oracle
from flywheel.proposal import ProposalLimits
from flywheel.provision import provision
from flywheel.release.overlay import (MAX_REGIONS, CoverageOverlay, OverlayBook, apply_overlay,
                                      check_overlay, scoring_margin)
from flywheel.release.root import load_root
from flywheel.verifier_answer import VerifierAnswer
from test.helpers import straight

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
SEQ = iter(range(1, 10**9))


@pytest.fixture(scope='module')
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp('keys')
    provision(directory, NOW)
    return directory


@pytest.fixture(scope='module')
def keyring(keys):
    return Keyring.from_root(load_root((keys / 'root.json').read_bytes()))


def answer(keys, region=(2.0, 1.0, 3.0, 1.5), key='verifier.pem', safe=True, seq=None,
           **changes) -> VerifierAnswer:
    a = dataclasses.replace(VerifierAnswer(
        'd' * 64, '1.0.0', safe, 0 if safe else 1, '', 0.5, 2.5, 1.2, 0.32, region, 1, 7,
        seq if seq is not None else next(SEQ)), **changes)
    k = load_message_key(keys / key)
    return dataclasses.replace(a, key_id=k.key_id, signature=k.sign(a.canonical_bytes()))


def admit(book, keys, keyring, spec, a=None, robot='', version='1.0.0', number=1):
    return book.admit(a if a is not None else answer(keys), robot, keyring, version, number,
                      spec)


def test_a_signed_safe_answer_makes_the_next_overlay_for_the_active_release(keys, keyring, spec):
    book = OverlayBook()
    done = admit(book, keys, keyring, spec)
    o = done.overlay
    assert (o.number, o.version, o.oracle_version, o.release_number, o.coverage) == (
        1, '1', '1.0.0', 1, 1.0)
    m = scoring_margin(spec)
    assert o.regions == ((2.0 - m, 1.0 - m, 3.0 + m, 1.5 + m),)
    again = admit(book, keys, keyring, spec, answer(keys, (4.0, 1.0, 4.5, 1.5)))
    assert again.overlay.number == 2 and len(again.overlay.regions) == 2


@pytest.mark.parametrize('forge, why', [
    ('unsigned', 'unsigned'), ('oracle_key', 'not a verifier key'), ('tampered', 'bad signature'),
    ('unsafe', 'not a safe answer'), ('malformed', 'malformed')])
def test_an_answer_that_does_not_count_changes_nothing(keys, keyring, spec, forge, why):
    book = OverlayBook()
    a = {'unsigned': lambda: dataclasses.replace(answer(keys), signature=b''),
         'oracle_key': lambda: answer(keys, key='oracle.pem'),
         'tampered': lambda: dataclasses.replace(answer(keys), region=(0.0, 0.0, 9.0, 9.0)),
         'unsafe': lambda: answer(keys, safe=False),
         'malformed': lambda: answer(keys, region=(0.0, 0.0, math.nan, 1.0))}[forge]()
    done = admit(book, keys, keyring, spec, a)
    assert done.overlay is None and why in done.why
    assert book.overlay is None and book.last_number == 0


def test_a_replayed_answer_changes_nothing(keys, keyring, spec):
    book = OverlayBook()
    a = answer(keys)
    assert admit(book, keys, keyring, spec, a).overlay.number == 1
    done = admit(book, keys, keyring, spec, a)
    assert done.overlay is None and 'replayed' in done.why and book.last_number == 1
    # another robot's Gate may carry the same verifier key's answers: counted per robot
    assert admit(book, keys, keyring, spec, answer(keys, (6.0, 1.0, 7.0, 2.0)),
                 robot='/robot_1').overlay is not None


def test_an_answer_about_another_release_changes_nothing(keys, keyring, spec):
    done = admit(OverlayBook(), keys, keyring, spec, answer(keys), version='1.1.0', number=2)
    assert done.overlay is None and "the active release is '1.1.0'" in done.why


def test_a_region_wider_than_max_extent_changes_nothing(keys, keyring, spec):
    done = admit(OverlayBook(max_extent=1.0), keys, keyring, spec,
                 answer(keys, (0.0, 0.0, 5.0, 0.5)))
    assert done.overlay is None and 'wider than' in done.why


def test_a_region_already_covered_makes_no_new_overlay(keys, keyring, spec):
    book = OverlayBook()
    admit(book, keys, keyring, spec)
    done = admit(book, keys, keyring, spec, answer(keys, (2.2, 1.1, 2.8, 1.4)))
    assert done.overlay is None and done.why == 'already covered' and book.last_number == 1


def test_a_new_release_starts_a_new_overlay_with_a_higher_number(keys, keyring, spec):
    book = OverlayBook()
    admit(book, keys, keyring, spec)
    done = admit(book, keys, keyring, spec, answer(keys, oracle_version='1.1.0'),
                 version='1.1.0', number=2)
    assert (done.overlay.number, done.overlay.release_number, len(done.overlay.regions)) == (
        2, 2, 1)
    assert book.for_release('1.0.0', 1) is None and book.for_release('1.1.0', 2) == done.overlay


def test_a_full_overlay_refuses_more(keys, keyring, spec):
    book = OverlayBook()
    regions = tuple((float(i), 0.0, float(i) + 0.1, 0.1) for i in range(MAX_REGIONS))
    book.overlay = CoverageOverlay(1, '1.0.0', 1, 1.0, regions)
    book.last_number = 1
    done = admit(book, keys, keyring, spec, answer(keys, (-50.0, -50.0, -49.0, -49.0)))
    assert done.overlay is None and 'fold it in' in done.why


def test_the_book_survives_a_restart_and_refuses_a_corrupt_file(keys, keyring, spec):
    book = OverlayBook()
    a = answer(keys)
    admit(book, keys, keyring, spec, a)
    again = OverlayBook.from_json(book.to_json(), 1.0, 10.0)
    assert again.overlay == book.overlay and again.last_number == 1
    assert 'replayed' in admit(again, keys, keyring, spec, a).why
    for raw in (b'{', b'{"last_number": 0, "floors": {}, "overlay": {"number": 3}}',
                book.to_json().replace(b'"last_number": 1', b'"last_number": 0')):
        with pytest.raises(ValueError, match='not an overlay file'):
            OverlayBook.from_json(raw, 1.0, 10.0)


def signed_overlay(keys, number=1, key='governance.pem', **changes) -> CoverageOverlay:
    o = CoverageOverlay(number, '1.0.0', 1, 1.0, ((5.5, 3.5, 6.5, 4.5),), 7, number, **changes)
    k = load_message_key(keys / key)
    return dataclasses.replace(o, key_id=k.key_id, signature=k.sign(o.canonical_bytes()))


def test_the_oracle_applies_only_a_signed_newer_overlay(keys, keyring, tmp_path):
    assert check_overlay(signed_overlay(keys), keyring, applied=0) is None
    assert 'not newer' in check_overlay(signed_overlay(keys, 2), keyring, applied=2)
    assert 'unsigned' in check_overlay(dataclasses.replace(signed_overlay(keys), signature=b''),
                                       keyring, applied=0)
    assert 'not a governance key' in check_overlay(signed_overlay(keys, key='verifier.pem'),
                                                   keyring, applied=0)
    tampered = dataclasses.replace(signed_overlay(keys), regions=((0.0, 0.0, 12.0, 8.0),))
    assert 'bad signature' in check_overlay(tampered, keyring, applied=0)
    stranger = write_message_key(tmp_path / 'mallory.pem')
    o = dataclasses.replace(signed_overlay(keys), key_id=stranger.key_id)
    o = dataclasses.replace(o, signature=stranger.sign(o.canonical_bytes()))
    assert 'not a governance key' in check_overlay(o, keyring, applied=0)


@pytest.mark.parametrize('change', [dict(coverage=0.0), dict(coverage=math.nan),
                                    dict(regions=((1.0, 1.0, 0.0, 2.0),)), dict(number=0),
                                    dict(oracle_version=''), dict(release_number=0)])
def test_a_malformed_overlay_is_refused(keys, keyring, change):
    o = dataclasses.replace(signed_overlay(keys), **change)
    assert check_overlay(o, keyring, applied=0) is not None


def test_an_overlay_only_raises_the_cells_its_regions_touch(spec):
    grid = dataclasses.replace(spec.coverage, cells=np.full((8, 12), 0.2))
    grid.cells[0, 0] = 1.0
    o = CoverageOverlay(1, '1.0.0', 1, 0.9, ((0.5, 0.5, 1.2, 0.7), (-5.0, -5.0, -4.0, -4.0)))
    raised = apply_overlay(grid, o).cells
    assert raised[0, 0] == 1.0 and raised[0, 1] == 0.9            # never lowered; touched
    assert (raised[1:, :] == 0.2).all() and (raised[0, 2:] == 0.2).all()
    assert (grid.cells[0, 1]) == 0.2                               # the release's grid unchanged


def test_a_verified_situation_stops_escalating(spec, policy, keys, keyring):
    """The Oracle's coverage uncertainty for the very proposal verified drops below its threshold
    once the overlay made from the verifier's region is applied (and nowhere else is raised)."""
    from flywheel.verify.verifier import Knowledge, Verifier, VerifierConfig
    cells = np.ones_like(spec.coverage.cells)
    cells[1, 1:9] = 0.1                                            # y in [1, 2), x in [1, 9)
    uncovered = dataclasses.replace(spec, coverage=dataclasses.replace(spec.coverage,
                                                                       cells=cells))
    oracle = Oracle(uncovered, ProposalLimits())
    p = straight(1.5, 1.3, 0.0, 0.5)
    before = oracle.evaluate(p)
    assert before.coverage_uncertainty > before.coverage_uncertainty_threshold
    assert any(f.action == Action.ESCALATE and f.reason == Reason.COVERAGE_UNCERTAINTY
               for f in policy.assess(before))
    v = Verifier(Knowledge.of(uncovered), VerifierConfig()).check(p, 0.32, lambda: 0)
    assert v.safe
    a = answer(keys, region=tuple(v.bounds))
    o = OverlayBook().admit(a, '', keyring, '1.0.0', 1, uncovered).overlay
    after = oracle.with_coverage(apply_overlay(uncovered.coverage, o), o.version).evaluate(p)
    assert after.coverage_uncertainty <= after.coverage_uncertainty_threshold
    assert after.overlay_version == '1' and not any(
        f.action == Action.ESCALATE for f in policy.assess(after))
    elsewhere = straight(6.5, 1.3, 0.0, 0.5)                       # further on: not verified
    assert oracle.with_coverage(apply_overlay(uncovered.coverage, o), o.version).evaluate(
        elsewhere).coverage_uncertainty > uncovered.coverage.threshold


def test_a_widened_region_holds_every_box_the_oracle_scores(spec):
    """scoring_margin covers the Oracle's inflation: its swept extent lies inside the verifier's
    bounds widened by it, for straight runs and turns at several speeds."""
    from flywheel.verify.verifier import Knowledge, Verifier, VerifierConfig
    oracle = Oracle(spec, ProposalLimits())
    verifier = Verifier(Knowledge.of(spec), VerifierConfig())
    m = scoring_margin(spec)
    for v, w in ((0.2, 0.0), (0.5, 0.0), (0.9, 0.0), (0.5, 0.8), (0.3, -1.2), (0.0, 1.0)):
        p = straight(2.0, 2.0, 0.3, v, w=w)
        checked = verifier.check(p, 0.32, lambda: 0)
        xmin, ymin, xmax, ymax = oracle.swept(p).extent
        bx0, by0, bx1, by1 = checked.bounds
        assert (xmin >= bx0 - m and ymin >= by0 - m and xmax <= bx1 + m
                and ymax <= by1 + m), (v, w)
