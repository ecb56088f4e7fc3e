"""Authenticated verdicts, status and proposals: one test per attack on the bus, each asserting the
exact reason; a forged message decides nothing and cannot hijack the genuine one."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from securesystemslib.signer import SSlibKey

from flywheel.auth import assign_signers, load_message_key, write_message_key
from flywheel.enforcement.config import GateConfig
from flywheel.enforcement.decision import Action, Reason, Subject
from flywheel.enforcement.gate import Gate
from flywheel.oracle.oracle import Oracle
from flywheel.oracle_status import OracleStatus
from flywheel.proposal import ProposalLimits
from flywheel.provision import provision
from flywheel.release.keys import load_signer
from flywheel.release.root import load_root, new_root, sign
from test.enforcement.test_gate import EPOCH, at, prop, robot_at

NOW = datetime.fromtimestamp(at(0).wall_ns / 1e9, tz=timezone.utc)
CONFIG = GateConfig(max_pending=4, follow_governance=True)


@pytest.fixture(scope='module')
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp('keys')
    provision(directory, NOW)
    return directory


@pytest.fixture
def gate(policy, keys):
    gate = Gate(policy, CONFIG, load_root((keys / 'root.json').read_bytes()))
    robot_at(gate, 1.5, 1.0, 0.0)
    gate.on_status(status(keys), at(0))
    return gate


@pytest.fixture(scope='module')
def oracle(spec):
    return Oracle(spec, ProposalLimits())


SEQ = iter(range(1, 10**9))


def signed(key, signals):
    return dataclasses.replace(signals, key_id=key.key_id,
                               signature=key.sign(signals.canonical_bytes()))


def verdict(oracle, keys, p, t_ms=0.0, key='oracle.pem', **changes):
    v = dataclasses.replace(oracle.evaluate(p), stamp_ns=int(t_ms * 1e6), epoch=EPOCH,
                            seq=next(SEQ), **changes)
    return signed(load_message_key(keys / key), v)


def signed_proposal(keys, p, key='proposer.pem'):
    k = load_message_key(keys / key)
    return dataclasses.replace(p, key_id=k.key_id, signature=k.sign(p.signing_bytes()))


STATUS_SEQ = iter(range(1, 10**9))


def status(keys, key='governance.pem', accepted=('1.0.0',), t_ms=0.0, seq=None, root=b'',
           root_version=1):
    s = OracleStatus(EPOCH, seq if seq is not None else next(STATUS_SEQ),
                     at(t_ms).wall_ns, 'active', accepted[0], 1, '', 0, 1, accepted[0],
                     tuple(accepted), root_version, root, '')
    return signed(load_message_key(keys / key), s)


def test_a_genuine_verdict_on_a_signed_proposal_is_allowed(gate, oracle, keys):
    p = signed_proposal(keys, prop())
    assert gate.on_proposal(p, at(0)) == []
    d, = gate.on_signals(verdict(oracle, keys, p), at(0))
    assert d.action == Action.ALLOW and d.signals.key_id == load_message_key(
        keys / 'oracle.pem').key_id


@pytest.mark.parametrize('forge', ['unsigned', 'stranger', 'governance_key', 'tampered'])
def test_a_forged_verdict_is_recorded_and_cannot_hijack_the_genuine_one(gate, oracle, keys,
                                                                         tmp_path, forge):
    """A forgery with the right digest and risk 0 arrived first and won the race before."""
    p = signed_proposal(keys, prop())
    gate.on_proposal(p, at(0))
    flattering = dict(collision_risk=0.0, constraint_risk=0.0, safety_score=1.0)
    if forge == 'unsigned':
        forged = dataclasses.replace(oracle.evaluate(p), epoch=EPOCH, seq=next(SEQ), **flattering)
    elif forge == 'stranger':
        write_message_key(tmp_path / 'mallory.pem')
        forged = signed(load_message_key(tmp_path / 'mallory.pem'),
                        dataclasses.replace(oracle.evaluate(p), epoch=EPOCH, seq=next(SEQ)))
    elif forge == 'governance_key':
        forged = verdict(oracle, keys, p, key='governance.pem')
    else:
        forged = dataclasses.replace(verdict(oracle, keys, p), oracle_version='evil')
    ignored, = gate.on_signals(forged, at(0))
    assert (ignored.subject, ignored.reasons, ignored.command) == (
        Subject.VERDICT, (Reason.BAD_SIGNATURE,), None)
    d, = gate.on_signals(verdict(oracle, keys, p), at(1))
    assert d.subject == Subject.PROPOSAL and d.action == Action.ALLOW


def test_an_old_genuine_verdict_replayed_is_refused(gate, oracle, keys):
    p = signed_proposal(keys, prop(seq=1))
    old = verdict(oracle, keys, p)
    gate.on_proposal(p, at(0))
    assert gate.on_signals(old, at(0))[0].action == Action.ALLOW
    again, = gate.on_signals(old, at(5))
    assert again.reasons == (Reason.REPLAYED_VERDICT,)


@pytest.mark.parametrize('forge', ['unsigned', 'oracle_key', 'spoofed_id'])
def test_a_proposal_from_a_named_proposer_must_carry_its_signature(gate, keys, forge):
    p = prop()
    if forge == 'oracle_key':
        p = signed_proposal(keys, p, key='oracle.pem')
    elif forge == 'spoofed_id':             # signed, then the id changed to another proposer's
        p = dataclasses.replace(signed_proposal(keys, p), proposal_id='proposer/666')
    d, = gate.on_proposal(p, at(0))
    assert Reason.BAD_SIGNATURE in d.reasons and d.command is None


def test_a_forged_status_cannot_make_a_version_count(gate, oracle, keys, tmp_path):
    write_message_key(tmp_path / 'mallory.pem')
    forged = dataclasses.replace(status(keys, accepted=('evil',)), signature=b'')
    assert 'unsigned' in gate.on_status(forged, at(0))
    stranger = OracleStatus(EPOCH, next(STATUS_SEQ), at(0).wall_ns, 'active', 'evil', 9, '', 0,
                            9, 'evil', ('evil',), 1, b'', '')
    assert 'not a governance key' in gate.on_status(
        signed(load_message_key(tmp_path / 'mallory.pem'), stranger), at(0))
    assert gate.accepted_versions == {'1.0.0'}
    p = signed_proposal(keys, prop())
    gate.on_proposal(p, at(0))
    assert gate.on_signals(verdict(oracle, keys, p, oracle_version='evil'), at(0)) == []
    d, = gate.tick(at(260))
    assert d.action == Action.BLOCK and Reason.UNKNOWN_ORACLE_VERSION in d.reasons


def test_an_old_genuine_status_replayed_is_refused(gate, keys):
    old = status(keys, accepted=('0.9.0',), seq=1)   # older than the fixture's
    assert 'not newer' in gate.on_status(old, at(0))
    stale = status(keys, accepted=('0.9.0',), t_ms=-60_000)
    assert 'stale' in gate.on_status(stale, at(0))
    assert gate.accepted_versions == {'1.0.0'}


def test_without_a_status_nothing_counts_when_following_governance(policy, oracle, keys):
    gate = Gate(policy, CONFIG, load_root((keys / 'root.json').read_bytes()))
    robot_at(gate, 1.5, 1.0, 0.0)
    p = signed_proposal(keys, prop())
    gate.on_proposal(p, at(0))
    assert gate.on_signals(verdict(oracle, keys, p), at(0)) == []
    d, = gate.tick(at(260))
    assert Reason.UNKNOWN_ORACLE_VERSION in d.reasons and d.command is None


def test_a_verdict_of_a_new_release_waits_for_the_status_that_makes_it_count(gate, oracle, keys):
    """The Oracle may swap to a new release before the Gate hears governance's status accepting
    it: the new release's verdict waits with its proposal, and the status decides it (no stop at
    a swap). A second verdict of a release that does not count is ignored meanwhile."""
    p = signed_proposal(keys, prop())
    gate.on_proposal(p, at(0))
    assert gate.on_signals(verdict(oracle, keys, p, oracle_version='1.1.0'), at(1)) == []
    second, = gate.on_signals(verdict(oracle, keys, p, oracle_version='1.2.0'), at(2))
    assert (second.subject, second.reasons) == (Subject.VERDICT, (Reason.UNKNOWN_ORACLE_VERSION,))
    assert gate.tick(at(20)) == []
    assert gate.on_status(status(keys, accepted=('1.0.0', '1.1.0')), at(30)) is None
    d, = gate.tick(at(40))
    assert d.subject == Subject.PROPOSAL and d.action == Action.ALLOW
    assert d.oracle_version == '1.1.0' and gate.command_at(at(40).steady_ns) is not None


def rotated_root(keys, tmp_path, oracle_key):
    """Root v2: same operator, the Oracle key replaced; signed by the (same) threshold."""
    old = load_root((keys / 'root.json').read_bytes())
    operator = SSlibKey.from_dict(*_keyid_and_dict(keys / 'operator.pub.json'))
    root = new_root([operator], 1, 1, NOW + timedelta(days=30), version=2)
    public = lambda path: SSlibKey.from_crypto(load_message_key(path).private.public_key())  # noqa: E731
    assign_signers(root.signed, [public(oracle_key)], [public(keys / 'governance.pem')],
                   {'proposer': [public(keys / 'proposer.pem')]})
    sign(root, load_signer(keys / 'operator.pem'))
    assert old.signed.version == 1
    return root.to_bytes()


def _keyid_and_dict(path):
    import json
    doc = json.loads(path.read_text())
    return doc.pop('keyid'), doc


def test_a_rotated_root_retires_the_old_oracle_key(gate, oracle, keys, tmp_path):
    write_message_key(tmp_path / 'oracle2.pem')
    v2 = rotated_root(keys, tmp_path, tmp_path / 'oracle2.pem')
    assert gate.on_status(status(keys, root=v2, root_version=2), at(0)) is None
    p = signed_proposal(keys, prop())
    gate.on_proposal(p, at(0))
    ignored, = gate.on_signals(verdict(oracle, keys, p), at(0))        # the retired key
    assert ignored.reasons == (Reason.BAD_SIGNATURE,)
    new = signed(load_message_key(tmp_path / 'oracle2.pem'),
                 dataclasses.replace(oracle.evaluate(p), epoch=EPOCH, seq=next(SEQ)))
    assert gate.on_signals(new, at(0))[0].action == Action.ALLOW


def test_a_root_not_signed_by_the_old_threshold_is_refused(gate, keys, tmp_path):
    other = tmp_path / 'other'
    provision(other, NOW)                     # a self-consistent root by another operator
    evil = load_root((other / 'root.json').read_bytes())
    evil.signed.version = 2
    evil.signatures.clear()
    sign(evil, load_signer(other / 'operator.pem'))
    problem = gate.on_status(status(keys, root=evil.to_bytes(), root_version=2), at(0))
    assert 'refused' in problem and gate.root.signed.version == 1
