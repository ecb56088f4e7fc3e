"""The core mirrors the message contract one to one, and the core never imports ROS."""
import ast
from pathlib import Path

import pytest

from flywheel.enforcement.decision import Action, Reason, Subject
from flywheel.proposal import Defect
from flywheel.signals import EvidenceKind, EvidenceStatus
from flywheel.verifier_answer import MAX_PROPOSAL_BYTES, SAFE
from flywheel.verify.verifier import VerifyReason

SRC = Path(__file__).resolve().parents[1] / 'src' / 'flywheel'
MSG = Path(__file__).resolve().parents[1] / 'msg'


def constants(msg_file: str, prefix: str) -> dict[str, int]:
    found = {}
    for line in (MSG / msg_file).read_text().splitlines():
        line = line.split('#')[0].strip()
        if line.startswith('uint8 ') and '=' in line:
            name, value = line[len('uint8 '):].split('=')
            if name.startswith(prefix):
                found[name[len(prefix):]] = int(value)
    return found


@pytest.mark.parametrize('enum, msg_file, prefix', [
    (Action, 'GateDecision.msg', 'ACTION_'), (Reason, 'GateDecision.msg', 'REASON_'),
    (Subject, 'GateDecision.msg', 'SUBJECT_'), (VerifyReason, 'VerifierAnswer.msg', 'REASON_'),
    (EvidenceKind, 'Evidence.msg', 'KIND_'), (EvidenceStatus, 'SafetySignals.msg', 'EVIDENCE_')])
def test_enums_mirror_message_constants(enum, msg_file, prefix):
    assert {m.name: int(m) for m in enum} == constants(msg_file, prefix)


def test_generated_messages_carry_the_same_constants():
    from alignment_flywheel.msg import GateDecision
    assert {r.name: getattr(GateDecision, f'REASON_{r.name}') for r in Reason} == {
        r.name: int(r) for r in Reason}


def test_the_verify_service_holds_the_largest_proposal_its_message_allows():
    """srv/Verify.srv's proposal bound fits every Proposal within the message's own bounds."""
    import numpy as np

    from flywheel.proposal import make_proposal
    from flywheel.wire import MAX_POINTS, encode_proposal
    n = MAX_POINTS
    p = make_proposal('p' * 64, 'q' * 64, 1, 'f' * 256, 0, np.arange(n, dtype=np.int64),
                      np.zeros((n, 5)), (0.0, 0.0))
    size = len(encode_proposal(p)) + 4 + 64 + 4 + 64         # plus a key id and signature
    assert size <= MAX_PROPOSAL_BYTES
    assert f'uint8[<={MAX_PROPOSAL_BYTES}] proposal' in (MSG.parent / 'srv' / 'Verify.srv'
                                                        ).read_text()
    assert SAFE == VerifyReason.SAFE


def test_every_proposal_defect_has_a_reason():
    assert all(Reason.of_defect(d).name == d.name for d in Defect)


def core_modules():
    for path in sorted(SRC.rglob('*.py')):
        relative = path.relative_to(SRC)
        if relative.parts[0] not in ('ros', 'cli'):
            yield relative


@pytest.mark.parametrize('module', list(core_modules()), ids=str)
def test_core_modules_do_not_import_ros(module):
    tree = ast.parse((SRC / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    forbidden = {m for m in imported if m.split('.')[0] in (
        'rclpy', 'alignment_flywheel', 'geometry_msgs', 'nav_msgs', 'std_msgs')
        or m.startswith('flywheel.ros')}
    assert not forbidden, f'{module} imports {sorted(forbidden)}'
