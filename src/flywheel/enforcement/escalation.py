"""Escalations: proposals the Gate decided ESCALATE, each waiting for the verifier's answer.

Invariants, each tested:
- An escalation is held by the digest the Gate computed for the proposal; only an answer naming
  that digest can end it, and it ends at most once: with the answer, or at its deadline
  (``verify_timeout`` after the question, steady clock).
- An answer counts only if it is one an honest verifier sends (flywheel/verifier_answer.py), is
  signed by a verifier key of the trust root (with authentication on), is numbered (epoch, seq)
  after every answer heard from that key, comes from a verifier session not in the future, and is
  stamped no earlier than the question (less the clock skew allowed) and no later than now (plus
  it). An answer that fails any of these decides nothing: the escalation still waits for the
  genuine one, so a forgery that arrives first cannot end it.
- At most ``max_pending`` escalations are held; the oldest is given up (and stays stopped) first.
What an answer that counts leads to (the Gate re-checks everything an approval needs) is the
Gate's: flywheel/enforcement/gate.py. Time is passed in; nothing here reads a clock.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from flywheel.auth import VERIFIER, Keyring
from flywheel.enforcement.decision import Reason
from flywheel.proposal import Proposal
from flywheel.signals import SafetySignals
from flywheel.verifier_answer import VerifierAnswer, answer_problem


@dataclass(frozen=True)
class VerifyRequest:
    """What the node sends the verifier: the proposal's bytes as received, its digest, and the
    hold the answer must cover."""

    proposal_id: str
    proposal_digest: str
    proposal: bytes
    hold: float


@dataclass(frozen=True)
class Escalation:
    """A proposal held stopped for the verifier, with the verdicts that escalated it."""

    proposal: Proposal
    raw: bytes
    verdicts: tuple[SafetySignals, ...]
    asked_ros_ns: int
    deadline_steady_ns: int


@dataclass(frozen=True)
class Refusal:
    """Why an answer decides nothing."""

    reason: Reason
    detail: str


class Escalations:
    def __init__(self, max_pending: int, timeout_ns: int, max_skew_ns: int):
        self.max_pending = max_pending
        self.timeout_ns = timeout_ns
        self.max_skew_ns = max_skew_ns
        self._held: OrderedDict[str, Escalation] = OrderedDict()     # digest -> escalation
        self._last: dict[str, tuple[int, int]] = {}                  # verifier key -> (epoch, seq)
        self._requests: list[VerifyRequest] = []

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, digest: str) -> bool:
        return digest in self._held

    def proposal_id(self, digest: str) -> str:
        """The id of the proposal escalated under ``digest`` ('' if none waits)."""
        escalation = self._held.get(digest)
        return escalation.proposal.proposal_id if escalation is not None else ''

    def add(self, proposal: Proposal, raw: bytes, verdicts: tuple[SafetySignals, ...],
            ros_ns: int, steady_ns: int, hold: float) -> list[Escalation]:
        """Hold ``proposal`` for its answer and queue the question; returns the escalations given
        up to make room (oldest first)."""
        evicted = []
        while len(self._held) >= self.max_pending:
            evicted.append(self._held.popitem(last=False)[1])
        self._held[proposal.digest] = Escalation(proposal, raw, verdicts, ros_ns,
                                                 steady_ns + self.timeout_ns)
        self._requests.append(VerifyRequest(proposal.proposal_id, proposal.digest, raw, hold))
        return evicted

    def take_requests(self) -> list[VerifyRequest]:
        """The questions to send, once each."""
        requests, self._requests = self._requests, []
        return requests

    def expired(self, steady_ns: int) -> list[Escalation]:
        """Escalations whose deadline has passed, removed (oldest first)."""
        gone = []
        while self._held:
            digest, escalation = next(iter(self._held.items()))
            if escalation.deadline_steady_ns > steady_ns:
                break
            del self._held[digest]
            gone.append(escalation)
        return gone

    def clear(self) -> list[Escalation]:
        gone, self._held = list(self._held.values()), OrderedDict()
        self._requests = []
        return gone

    def admit(self, answer: VerifierAnswer, keyring: Keyring | None, ros_ns: int,
              wall_ns: int) -> Refusal | None:
        """Check an answer's form, signature and number; it advances the key's floor only if
        admitted. None: it may end the escalation it names (see ``take``)."""
        problem = answer_problem(answer)
        if problem is not None:
            return Refusal(Reason.MALFORMED, problem)
        if keyring is not None:
            problem = keyring.check(VERIFIER, answer.key_id, answer.signature,
                                    answer.canonical_bytes())
            if problem is not None:
                return Refusal(Reason.BAD_SIGNATURE, problem)
        last = self._last.get(answer.key_id)
        if last is not None and (answer.epoch, answer.seq) <= last:
            return Refusal(Reason.REPLAYED_VERDICT,
                           f'answer ({answer.epoch}, {answer.seq}) after {last}')
        if answer.epoch > wall_ns + self.max_skew_ns:
            return Refusal(Reason.FUTURE_STAMP, 'verifier epoch in the future')
        if answer.stamp_ns > ros_ns + self.max_skew_ns:
            return Refusal(Reason.FUTURE_STAMP,
                           f'answer stamped {(answer.stamp_ns - ros_ns) * 1e-9:.3f}s ahead')
        self._last[answer.key_id] = (answer.epoch, answer.seq)
        return None

    def take(self, answer: VerifierAnswer, steady_ns: int
             ) -> tuple[Escalation | None, Refusal | None]:
        """The escalation an admitted answer ends, or why it ends none. An answer stamped before
        the question was asked cannot be about it; one after the deadline ends it as a timeout."""
        escalation = self._held.get(answer.proposal_digest)
        if escalation is None:
            return None, Refusal(Reason.UNKNOWN_PROPOSAL,
                                 'no escalation waits for this digest (answered late, replayed '
                                 'or forged)')
        if answer.stamp_ns < escalation.asked_ros_ns - self.max_skew_ns:
            return None, Refusal(Reason.STALE_VERDICT, 'answer stamped '
                                 f'{(escalation.asked_ros_ns - answer.stamp_ns) * 1e-9:.3f}s '
                                 'before the question')
        del self._held[answer.proposal_digest]
        if steady_ns > escalation.deadline_steady_ns:
            return escalation, Refusal(Reason.VERIFY_TIMEOUT, 'answered '
                                       f'{(steady_ns - escalation.deadline_steady_ns) * 1e-9:.3f}'
                                       's after verify_timeout')
        return escalation, None
