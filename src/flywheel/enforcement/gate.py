"""The Gate: turns (proposal, verdict) pairs into decisions and says which command may be in force.

Invariants, each tested:
- A non-zero command is approved only by an ALLOW/DEGRADE decision on a verdict whose digest equals
  the digest the Gate computed for the proposal it holds, from an accepted Oracle version, fresh,
  covering a hold at least as long as the Gate's (``GateConfig.hold``), for a trajectory that starts
  where fresh odometry in the world frame puts the robot (within the tolerances the verdict scored).
- Every proposal gets exactly one PROPOSAL decision: on arrival (malformed, replayed, stale, from the
  future), on its verdict, or NO_VERDICT after ``verdict_timeout``. A verdict that cannot decide it
  (for another digest, replayed, for no proposal) is recorded as a VERDICT decision and ignored, so
  the proposal still gets its real verdict: a bad verdict cannot hijack a good one.
- A proposal's (epoch, seq) is decided at most once and only ever moves forward per proposer; a
  restarted proposer starts a newer epoch.
- With a Keyring (authentication on) a verdict counts only if signed by an Oracle key of the trust
  root, a status only if signed by a governance key, and a proposal from a proposer the root names
  keys for only if signed by one of them; a root carried by a status replaces the Gate's only after
  a valid rotation (old and new thresholds). Unsigned or wrongly signed input decides nothing.
- A candidate release on trial never makes the robot less careful: in SHADOW its verdicts are only
  recorded (SHADOW records: the action it would have led to); in CANARY a proposal waits for a
  verdict of the active release and one of the candidate, and the most restrictive decision wins.
  Verdicts that overtake their proposal wait for it one per release, so neither the candidate's
  SHADOW record nor a canary's pair is lost to the order in which they arrive.
- A verdict of a release that does not count yet is parked with its proposal until governance's
  status says it counts (the Oracle may swap before the Gate hears that status) or the proposal's
  ``verdict_timeout``, then decided as any verdict: a swap is not a stop, and a release that
  never comes to count still blocks.
- No approval is honoured for longer than ``command_timeout - delivery_margin`` on the steady
  clock (the margin is the trip to the base, inside ``command_timeout``): ``approval`` carries its
  own deadline, so whoever publishes commands (the node's output process) needs nothing else from
  the Gate to fail closed, and a stalled ROS clock cannot extend it.
- ESCALATE holds the robot (no approval in force) and asks the verifier about that exact digest
  (``take_requests``: the proposal's bytes as received). The escalation ends once, in a
  VERIFICATION record (the proposal's own decision stays the ESCALATE): a safe answer that counts
  (flywheel/enforcement/escalation.py) approves the command the verdicts allowed only if every
  check an approval needs still holds at that moment (binding and freshness of the proposal and
  its verdicts, not superseded, accepted versions, the odometry anchor), and the answer covers
  the Gate's hold and comes from knowledge of an accepted release; an unsafe answer withdraws the
  approval in force; no answer within ``verify_timeout`` leaves the robot stopped. An answer that
  does not count is recorded and decides nothing.
Time is passed in (``Now``); the Gate never reads a clock.
"""
from __future__ import annotations

import math
import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from flywheel.auth import GOVERNANCE, ORACLE, Keyring
from flywheel.enforcement.config import GateConfig
from flywheel.enforcement.decision import (Action, Decision, Finding, Reason, Subject,
                                           most_restrictive)
from flywheel.enforcement.escalation import Escalation, Escalations, VerifyRequest
from flywheel.enforcement.policy import RiskPolicy
from flywheel.errors import ReleaseError
from flywheel.kinematics import wrap
from flywheel.odometry import Odometry, odometry_problem
from flywheel.oracle_status import OracleStatus, status_problem
from flywheel.proposal import Proposal, check_proposal
from flywheel.release.root import load_root, verify_rotation
from flywheel.signals import SafetySignals
from flywheel.verifier_answer import VerifierAnswer

STOP = (0.0, 0.0)
DECIDED_MEMORY = 4096
# Verdicts kept per proposal that has not arrived yet: the active release's and a candidate's.
EARLY_PER_PROPOSAL = 2


@dataclass(frozen=True)
class Now:
    """One instant on the three clocks the Gate needs.

    ``ros_ns`` (ROS time; sim time under use_sim_time) is compared with message stamps;
    ``steady_ns`` (monotonic) bounds how long an approval is honoured; ``wall_ns`` is compared with
    epochs, which are wall-clock start times of the proposer and Oracle processes.
    """

    ros_ns: int
    steady_ns: int
    wall_ns: int


@dataclass(frozen=True)
class Approval:
    """The one command that may be in force, until ``until_steady_ns``."""

    command: tuple[float, float]
    proposal_id: str
    decided_ros_ns: int
    until_steady_ns: int

    def in_force(self, steady_ns: int) -> bool:
        return steady_ns < self.until_steady_ns


class Stage(enum.IntEnum):
    """A candidate's stage of a staged rollout (mirrors OracleStatus.STAGE_*)."""

    NONE = 0
    SHADOW = 1
    CANARY = 2


@dataclass(frozen=True)
class Candidate:
    version: str
    stage: Stage


@dataclass
class _Held:
    proposal: Proposal
    received_ns: int
    verdicts: dict = field(default_factory=dict)     # canary: version -> SafetySignals
    raw: bytes = b''                                 # as received: what the verifier is sent
    parked: SafetySignals | None = None              # of a release that does not count yet


class Gate:
    """Holds proposals until their verdicts arrive; decides; tracks the one approved command."""

    def __init__(self, policy: RiskPolicy, config: GateConfig, root=None):
        """``root``: the verified trust root (tuf Metadata[Root]) whose signer keys authenticate
        verdicts, status and proposals; None switches authentication off."""
        self.policy = policy
        self.config = config
        self.root = root
        self.keyring = Keyring.from_root(root) if root is not None else None
        # With a trust root, governance's signed status alone says which versions count: none
        # until a fresh one is heard (a newer installed release must never be bypassed).
        self.accepted_versions = (frozenset() if config.follow_governance
                                  else frozenset(config.accepted_oracle_versions))
        self._last_status: tuple[int, int] | None = None
        self.candidate: Candidate | None = None
        self.approval: Approval | None = None
        self.counts: Counter[str] = Counter()    # by action, reason and event, for status
        self._limits = config.limits()
        self._odometry: Odometry | None = None
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._last_seen: dict[str, tuple[int, int]] = {}      # proposer -> (epoch, seq)
        self._last_approved: dict[str, tuple[int, int]] = {}  # proposer -> (epoch, seq)
        self._last_verdict: dict[str, tuple[int, int]] = {}   # signing key -> (epoch, seq)
        # Recently decided proposals: their late verdicts are dropped, not decided twice (a shadow
        # candidate's verdict, which usually comes after the decision, is still recorded).
        self._decided: OrderedDict[str, Proposal | None] = OrderedDict()
        # Verdicts that arrived before their proposal, in order of arrival: id -> {oracle
        # version: (signals, received steady ns)}; at most max_pending ids.
        self._early: OrderedDict[str, dict[str, tuple[SafetySignals, int]]] = OrderedDict()
        self.escalations = Escalations(config.max_pending, _ns(config.verify_timeout),
                                       _ns(config.max_clock_skew))

    # -- inputs ---------------------------------------------------------------------------------

    def on_proposal(self, proposal: Proposal, now: Now, raw: bytes = b'') -> list[Decision]:
        """Hold a well-formed proposal for its verdict; decide a malformed one at once. ``raw``:
        the bytes it was read from (sent to the verifier if it is escalated)."""
        findings = [Finding(Action.BLOCK, Reason.of_defect(d), detail)
                    for d, detail in check_proposal(proposal, self._limits)]
        findings += self._ordering(proposal, now)
        if self.keyring is not None and self.keyring.signs_proposals(proposal.proposer_id):
            problem = self.keyring.check_proposal(proposal.proposer_id, proposal.key_id,
                                                  proposal.signature, proposal.signing_bytes())
            if problem is not None:
                findings.append(Finding(Action.BLOCK, Reason.BAD_SIGNATURE, problem))
        age = now.ros_ns - proposal.stamp_ns
        if age > _ns(self.config.proposal_timeout):
            findings.append(Finding(Action.BLOCK, Reason.STALE_PROPOSAL, f'{age * 1e-9:.3f}s old'))
        elif -age > _ns(self.config.max_clock_skew):
            findings.append(Finding(Action.BLOCK, Reason.FUTURE_STAMP,
                                    f'stamped {-age * 1e-9:.3f}s in the future'))
        if ((proposal.proposal_id in self._held or proposal.proposal_id in self._decided)
                and Reason.REPLAYED_SEQ not in {f.reason for f in findings}):
            findings.append(Finding(Action.BLOCK, Reason.REPLAYED_SEQ,
                                    f'proposal_id {proposal.proposal_id!r} seen before'))
        if findings:
            self._early.pop(proposal.proposal_id, None)   # its verdict can no longer decide it
            return [self._decide(proposal, findings, now)]
        self._advance(proposal)
        decisions = []
        if len(self._held) >= self.config.max_pending:
            _, oldest = self._held.popitem(last=False)
            self.counts['overload'] += 1
            decisions.append(self._decide(oldest.proposal, [Finding(
                Action.BLOCK, Reason.OVERLOAD, 'pending queue full: decided before its verdict')],
                now, withdraw=False))
        self._held[proposal.proposal_id] = _Held(proposal, now.steady_ns, raw=raw)
        for signals, _ in self._early.pop(proposal.proposal_id, {}).values():
            decisions += self._bind(signals, now)
        return decisions

    def on_refused_verdict(self, proposal_id: str, reason: Reason, detail: str,
                           now: Now) -> Decision:
        """A verdict that could not be read or authenticated: recorded, decides nothing."""
        self.counts[f'ignored_{reason.name}'] += 1
        return Decision(proposal_id, '', '', Action.BLOCK, (Finding(Action.BLOCK, reason, detail),),
                        '', self.policy.version, None, now.ros_ns, 0, Subject.VERDICT)

    def on_refused_input(self, proposal_id: str, proposer_id: str, reason: Reason, detail: str,
                         now: Now) -> Decision:
        """A proposal that could not even be read (oversize, malformed bytes): decided BLOCK
        under the id it claims, without holding it; the approval in force is withdrawn."""
        self.counts[reason.name] += 1
        return self._record(proposal_id, proposer_id, '', [Finding(Action.BLOCK, reason, detail)],
                            now, Subject.PROPOSAL, withdraw=True)

    def on_signals(self, signals: SafetySignals, now: Now) -> list[Decision]:
        """Decide the held proposal this verdict names, or record why the verdict is ignored.

        Empty for a late verdict on a proposal already decided (it was rejected on arrival or timed
        out), and for a verdict that came before its proposal (it waits for it).
        """
        key = signals.key_id
        if self.keyring is not None:
            problem = self.keyring.check(ORACLE, key, signals.signature,
                                         signals.canonical_bytes())
            if problem is not None:
                return [self._ignore(signals, Reason.BAD_SIGNATURE, problem, now)]
        last = self._last_verdict.get(key)
        if last is not None and (signals.epoch, signals.seq) <= last:
            return [self._ignore(signals, Reason.REPLAYED_VERDICT,
                                 f'verdict ({signals.epoch}, {signals.seq}) after {last}', now)]
        if signals.epoch > now.wall_ns + _ns(self.config.max_clock_skew):
            return [self._ignore(signals, Reason.FUTURE_STAMP, 'Oracle epoch in the future', now)]
        self._last_verdict[key] = (signals.epoch, signals.seq)
        return self._bind(signals, now)

    def _bind(self, signals: SafetySignals, now: Now) -> list[Decision]:
        """An admitted verdict: decide its proposal, wait for it, or record why it cannot."""
        candidate = self.candidate
        if (candidate is not None and signals.oracle_version == candidate.version
                and candidate.stage == Stage.SHADOW):
            return self._shadow(signals, now)
        held = self._held.get(signals.proposal_id)
        if held is None:
            if signals.proposal_id not in self._decided:
                return self._wait_for_proposal(signals, now)
            return []
        proposal = held.proposal
        if signals.proposal_digest != proposal.digest:
            return [self._ignore(signals, Reason.DIGEST_MISMATCH,
                                 f'verdict names {signals.proposal_digest[:16]}..., the proposal '
                                 f'held is {proposal.digest[:16]}...', now)]
        if not self._counts(signals.oracle_version):
            if held.parked is None:
                held.parked = signals
                return []
            return [self._ignore(signals, Reason.UNKNOWN_ORACLE_VERSION,
                                 f'a second verdict of a release that does not count '
                                 f'({signals.oracle_version!r})', now)]
        if candidate is not None and candidate.stage == Stage.CANARY:
            # both the active release and the candidate must have spoken: wait for the other
            role = 'candidate' if signals.oracle_version == candidate.version else 'active'
            held.verdicts[role] = signals
            if len(held.verdicts) < 2:
                return []
            verdicts = (held.verdicts['active'], held.verdicts['candidate'])
        else:
            verdicts = (signals,)
        del self._held[signals.proposal_id]
        return self._settle(held, verdicts, now)

    def _decide_now(self, held: _Held, signals: SafetySignals, now: Now) -> list[Decision]:
        """Decide a held proposal on this one verdict, whatever stage the rollout is in."""
        del self._held[signals.proposal_id]
        return self._settle(held, (signals,), now)

    def _settle(self, held: _Held, verdicts: tuple, now: Now) -> list[Decision]:
        proposal = held.proposal
        judged = [(v, self._judge(proposal, v, now)) for v in verdicts]
        findings = [f for _, fs in judged for f in fs]
        decision = self._decide(proposal, findings, now,
                                verdicts=tuple((v, most_restrictive(fs)[0]) for v, fs in judged))
        if decision.action != Action.ESCALATE:
            return [decision]
        given_up = self.escalations.add(proposal, held.raw, verdicts, now.ros_ns, now.steady_ns,
                                        self.config.hold)
        return [decision] + [self._verification(e, [Finding(
            Action.BLOCK, Reason.OVERLOAD, 'too many escalations waiting: given up')], now)
            for e in given_up]

    def _judge(self, proposal: Proposal, signals: SafetySignals, now: Now,
               shadow: bool = False) -> list[Finding]:
        """Every finding one verdict leads to: binding, then the policy, then the anchor. A
        shadow verdict is judged as if it had decided alone (the active release's approval of
        the same proposal does not supersede it)."""
        findings = self._binding(proposal, signals, now, shadow)
        if not findings:
            findings = self.policy.assess(signals)
        if not any(f.action > Action.DEGRADE for f in findings):
            findings += self._anchor(proposal, signals, now)
        return findings

    def _shadow(self, signals: SafetySignals, now: Now) -> list[Decision]:
        """A shadow candidate's verdict: what it would have led to, recorded, never enforced."""
        held = self._held.get(signals.proposal_id)
        proposal = held.proposal if held is not None else self._decided.get(signals.proposal_id)
        if proposal is None:
            if signals.proposal_id not in self._decided:    # it overtook its proposal
                return self._wait_for_proposal(signals, now)
            self.counts['shadow_unmatched'] += 1
            return []
        if signals.proposal_digest != proposal.digest:
            return [self._ignore(signals, Reason.DIGEST_MISMATCH,
                                 'shadow verdict for another digest', now)]
        action, ordered = most_restrictive(self._judge(proposal, signals, now, shadow=True))
        self.counts['shadow'] += 1
        return [Decision(proposal.proposal_id, proposal.proposer_id, proposal.digest, action,
                         ordered, signals.oracle_version, self.policy.version, None, now.ros_ns,
                         now.ros_ns - proposal.stamp_ns, Subject.SHADOW, ((signals, action),))]

    def _wait_for_proposal(self, signals: SafetySignals, now: Now) -> list[Decision]:
        """Keep a verdict until its proposal arrives (or ``verdict_timeout``), beside the other
        release's verdict on it: in canary the proposal needs both, in shadow the candidate's
        makes its SHADOW record. What cannot be kept is recorded and ignored."""
        waiting = self._early.setdefault(signals.proposal_id, {})
        version = signals.oracle_version
        if version in waiting:
            return [self._ignore(signals, Reason.REPLAYED_VERDICT,
                                 f'a second verdict of {version!r} on a proposal not yet '
                                 'arrived', now)]
        if len(waiting) >= EARLY_PER_PROPOSAL:
            return [self._ignore(signals, Reason.UNKNOWN_ORACLE_VERSION,
                                 f'a verdict of a third release ({version!r}) on a proposal not '
                                 'yet arrived', now)]
        waiting[version] = (signals, now.steady_ns)
        if len(self._early) <= self.config.max_pending:
            return []
        _, oldest = self._early.popitem(last=False)
        return [self._ignore(v, Reason.UNKNOWN_PROPOSAL,
                             'no proposal with this id (late, replayed or forged)', now)
                for v, _ in oldest.values()]

    def on_odometry(self, odometry: Odometry) -> None:
        self._odometry = odometry

    def take_requests(self) -> list[VerifyRequest]:
        """What to ask the verifier now (each escalation once)."""
        return self.escalations.take_requests()

    def on_answer(self, answer: VerifierAnswer, now: Now, asked: str = '') -> list[Decision]:
        """End the escalation this answer names, or record why it cannot (one VERIFICATION
        record either way). ``asked``: the digest the question was about, which names the
        proposal on the record of an answer that does not count."""
        refusal = self.escalations.admit(answer, self.keyring, now.ros_ns, now.wall_ns)
        escalation = None
        if refusal is None:
            escalation, refusal = self.escalations.take(answer, now.steady_ns)
        if escalation is None:
            self.counts[f'ignored_answer_{refusal.reason.name}'] += 1
            return [Decision(self.escalations.proposal_id(asked or answer.proposal_digest), '',
                             answer.proposal_digest, Action.BLOCK,
                             (Finding(Action.BLOCK, refusal.reason, refusal.detail),), '',
                             self.policy.version, None, now.ros_ns, 0, Subject.VERIFICATION,
                             answer=answer)]
        if refusal is not None:            # it came, but too late
            return [self._verification(escalation, [Finding(Action.BLOCK, refusal.reason,
                                                            refusal.detail)], now, answer)]
        if not answer.safe:
            return [self._verification(escalation, [Finding(
                Action.BLOCK, Reason.VERIFIED_UNSAFE, _answered(answer))], now, answer,
                withdraw=True)]
        return [self._verified(escalation, answer, now)]

    def _verified(self, e: Escalation, answer: VerifierAnswer, now: Now) -> Decision:
        """A safe answer that counts: approve what the verdicts allowed once the escalation is
        taken out, if every check an approval needs holds now."""
        findings = [Finding(Action.ALLOW, Reason.VERIFIED_SAFE, _answered(answer))]
        if answer.oracle_version not in self.accepted_versions:
            findings.append(Finding(Action.BLOCK, Reason.UNKNOWN_ORACLE_VERSION,
                                    f'the verifier checked against {answer.oracle_version!r}'))
        if not answer.hold >= self.config.hold:
            findings.append(Finding(Action.BLOCK, Reason.HOLD_NOT_COVERED,
                                    f'verified a hold of {answer.hold:.3f}s < '
                                    f'{self.config.hold:.3f}s'))
        judged = []
        for v in e.verdicts:
            found = self._binding(e.proposal, v, now)
            if not found:
                found = [f for f in self.policy.assess(v) if f.action != Action.ESCALATE]
            if not any(f.action > Action.DEGRADE for f in found):
                found += self._anchor(e.proposal, v, now)
            judged.append((v, most_restrictive(found)[0]))
            findings += found
        return self._verification(e, findings, now, answer, verdicts=tuple(judged))

    def _verification(self, e: Escalation, findings: list[Finding], now: Now,
                      answer: VerifierAnswer | None = None, withdraw: bool = False,
                      verdicts: tuple = ()) -> Decision:
        """What came of an escalation. Only an approval or an unsafe answer changes the command
        in force: the ESCALATE itself withdrew it, and a newer approval may be in force since."""
        p = e.proposal
        self.counts['verified' if answer is not None and answer.safe else 'not_verified'] += 1
        decision = self._record(p.proposal_id, p.proposer_id, p.digest, findings, now,
                                Subject.VERIFICATION, withdraw, p,
                                verdicts or tuple((v, Action.ESCALATE) for v in e.verdicts))
        return replace(decision, answer=answer)

    def tick(self, now: Now) -> list[Decision]:
        """Expire proposals whose verdict is late and verdicts whose proposal never came."""
        decisions = []
        deadline = now.steady_ns - _ns(self.config.verdict_timeout)
        while self._early:
            pid, waiting = next(iter(self._early.items()))
            if next(iter(waiting.values()))[1] > deadline:    # its first verdict is its oldest
                break
            del self._early[pid]
            decisions += [self._ignore(signals, Reason.UNKNOWN_PROPOSAL,
                                       'no proposal with this id arrived in time', now)
                          for signals, _ in waiting.values()]
        for held in [h for h in self._held.values()
                     if h.parked is not None and self._counts(h.parked.oracle_version)]:
            parked, held.parked = held.parked, None     # its release counts now
            decisions += self._bind(parked, now)
        while self._held:
            pid, held = next(iter(self._held.items()))
            if held.received_ns > deadline:
                break
            if held.parked is not None:         # its release never came to count
                decisions += self._decide_now(held, held.parked, now)
                continue
            del self._held[pid]
            decisions.append(self._decide(held.proposal, [Finding(
                Action.BLOCK, Reason.NO_VERDICT, 'verdict timed out' + (
                    f' (heard only the {", ".join(held.verdicts)} release)'
                    if held.verdicts else ''))], now, withdraw=False))
        for e in self.escalations.expired(now.steady_ns):
            decisions.append(self._verification(e, [Finding(
                Action.BLOCK, Reason.VERIFY_TIMEOUT,
                f'no answer from the verifier within {self.config.verify_timeout:.3f}s')], now))
        return decisions

    def command_at(self, steady_ns: int) -> tuple[float, float] | None:
        """The command in force (None: stop). Safe to call from another thread."""
        approval = self.approval
        return approval.command if approval is not None and approval.in_force(steady_ns) else None

    def on_status(self, status: OracleStatus, now: Now) -> str | None:
        """Take the accepted versions from an (authenticated) governance status; returns why it
        was not believed, or None."""
        problem = None
        if self.keyring is not None:
            problem = self._follow_root(status, now)
            if problem is None:
                problem = self.keyring.check(GOVERNANCE, status.key_id, status.signature,
                                             status.canonical_bytes())
        if problem is None:
            problem = status_problem(status, self._last_status, now.wall_ns,
                                     _ns(self.config.max_status_age),
                                     _ns(self.config.max_clock_skew))
        if problem is not None:
            self.counts['status_refused'] += 1
            return problem
        self._last_status = (status.epoch, status.seq)
        self.accepted_versions = frozenset(status.accepted_versions)
        stage = Stage(status.stage) if status.stage in Stage._value2member_map_ else Stage.NONE
        self.candidate = (Candidate(status.candidate_version, stage)
                          if status.candidate_version and stage != Stage.NONE else None)
        return None

    def fallback(self, proposal_id: str, proposer_id: str, finding: Finding, now: Now) -> Decision:
        """Stop now and withdraw the approved command (for failures outside the policy)."""
        return self._record(proposal_id, proposer_id, '', [finding], now, Subject.PROPOSAL,
                            withdraw=True)

    def _follow_root(self, status: OracleStatus, now: Now) -> str | None:
        """Take a newer trust root carried by a status, only as a valid rotation of ours."""
        if status.root_version <= self.root.signed.version or not status.root:
            return None
        try:
            new = load_root(status.root)
            verify_rotation(self.root, new, datetime.fromtimestamp(now.wall_ns / 1e9,
                                                                   tz=timezone.utc))
        except ReleaseError as exc:
            return f'trust root v{status.root_version} refused: {exc}'
        self.root, self.keyring = new, Keyring.from_root(new)
        return None

    def withdraw(self) -> None:
        self.approval = None

    # -- checks ---------------------------------------------------------------------------------

    def _ordering(self, proposal: Proposal, now: Now) -> list[Finding]:
        """Replay protection: (epoch, seq) strictly forward per proposer, bounded jumps."""
        if proposal.epoch > now.wall_ns + _ns(self.config.max_clock_skew):
            return [Finding(Action.BLOCK, Reason.FUTURE_STAMP,
                            f'epoch {proposal.epoch} is in the future')]
        last = self._last_seen.get(proposal.proposer_id)
        here = (proposal.epoch, proposal.seq)
        if last is not None and here <= last:
            return [Finding(Action.BLOCK, Reason.REPLAYED_SEQ, f'(epoch, seq) {here} after {last}')]
        floor = last[1] if last is not None and last[0] == proposal.epoch else 0
        if proposal.seq - floor > self.config.max_seq_jump:
            return [Finding(Action.BLOCK, Reason.SEQ_JUMP,
                            f'seq {proposal.seq} is {proposal.seq - floor} past {floor}')]
        return []

    def _advance(self, proposal: Proposal) -> None:
        last = self._last_seen.get(proposal.proposer_id)
        if last is not None and last[0] == proposal.epoch and proposal.seq > last[1] + 1:
            # Proposals the Gate never received (dropped by the transport under load).
            self.counts['lost'] += proposal.seq - last[1] - 1
        self._last_seen[proposal.proposer_id] = (proposal.epoch, proposal.seq)

    def _counts(self, version: str) -> bool:
        """Does a verdict of this Oracle version count (accepted, or the candidate on trial)?"""
        candidate = self.candidate
        return version in self.accepted_versions or (
            candidate is not None and candidate.stage != Stage.NONE
            and version == candidate.version)

    def _binding(self, proposal: Proposal, signals: SafetySignals, now: Now,
                 shadow: bool = False) -> list[Finding]:
        """Does this verdict bind to this proposal and to what the Gate will execute?"""
        findings = []
        if not self._counts(signals.oracle_version):
            findings.append(Finding(Action.BLOCK, Reason.UNKNOWN_ORACLE_VERSION,
                                    f'oracle_version={signals.oracle_version!r}'))
        age = now.ros_ns - signals.stamp_ns
        if age > _ns(self.config.signal_timeout):
            findings.append(Finding(Action.BLOCK, Reason.STALE_VERDICT,
                                    f'verdict stamped {age * 1e-9:.3f}s ago'))
        elif -age > _ns(self.config.max_clock_skew):
            findings.append(Finding(Action.BLOCK, Reason.FUTURE_STAMP,
                                    f'verdict stamped {-age * 1e-9:.3f}s in the future'))
        if now.ros_ns - proposal.stamp_ns > _ns(self.config.proposal_timeout):
            findings.append(Finding(Action.BLOCK, Reason.STALE_PROPOSAL,
                                    f'{(now.ros_ns - proposal.stamp_ns) * 1e-9:.3f}s old'))
        if not shadow and (proposal.epoch, proposal.seq) <= self._last_approved.get(
                proposal.proposer_id, (-1, -1)):
            findings.append(Finding(Action.BLOCK, Reason.STALE_PROPOSAL,
                                    'superseded by a newer approved proposal'))
        covered = (signals.scored_hold, signals.anchor_tolerance, signals.anchor_yaw_tolerance)
        if not (all(math.isfinite(c) and c >= 0.0 for c in covered)
                and signals.scored_hold >= self.config.hold):
            findings.append(Finding(Action.BLOCK, Reason.HOLD_NOT_COVERED,
                                    f'scored_hold {signals.scored_hold:.3f}s < hold '
                                    f'{self.config.hold:.3f}s or bad anchor tolerances {covered}'))
        return findings

    def _anchor(self, proposal: Proposal, signals: SafetySignals, now: Now) -> list[Finding]:
        """The trajectory must start where the robot is, within what the verdict scored. The
        robot moved since its odometry was measured: that drift counts against the tolerance."""
        odom = self._odometry
        problem = odometry_problem(odom, now.ros_ns, self.config.frame_id,
                                   _ns(self.config.odom_timeout))
        if problem is not None:
            return [Finding(Action.BLOCK, Reason.STALE_ODOMETRY, problem)]
        s = odom.state
        age = max(0, now.ros_ns - odom.stamp_ns) * 1e-9
        x0, y0, yaw0 = proposal.states[0, :3]
        distance = math.hypot(x0 - s.x, y0 - s.y) + abs(s.v) * age
        turn = abs(wrap(yaw0 - s.yaw)) + abs(s.w) * age
        if distance > signals.anchor_tolerance or turn > signals.anchor_yaw_tolerance:
            return [Finding(Action.BLOCK, Reason.START_POSE_MISMATCH,
                            f'starts {distance:.3f} m / {turn:.3f} rad from the robot (scored '
                            f'for {signals.anchor_tolerance:.3f} m / '
                            f'{signals.anchor_yaw_tolerance:.3f} rad)')]
        return []

    # -- decisions ------------------------------------------------------------------------------

    def _ignore(self, signals: SafetySignals, reason: Reason, detail: str, now: Now) -> Decision:
        """A verdict that decides nothing: recorded (subject VERDICT), never honoured."""
        self.counts[f'ignored_{reason.name}'] += 1
        return Decision(signals.proposal_id, '', signals.proposal_digest, Action.BLOCK,
                        (Finding(Action.BLOCK, reason, detail),), signals.oracle_version,
                        self.policy.version, None, now.ros_ns, 0, Subject.VERDICT,
                        ((signals, Action.BLOCK),))

    def _decide(self, proposal: Proposal, findings: list[Finding], now: Now,
                withdraw: bool = True, verdicts: tuple = ()) -> Decision:
        decision = self._record(proposal.proposal_id, proposal.proposer_id, proposal.digest,
                                findings, now, Subject.PROPOSAL, withdraw, proposal, verdicts)
        self._decided[proposal.proposal_id] = proposal
        if len(self._decided) > DECIDED_MEMORY:
            self._decided.popitem(last=False)
        return decision

    def _record(self, proposal_id: str, proposer_id: str, digest: str, findings: list[Finding],
                now: Now, subject: Subject, withdraw: bool, proposal: Proposal | None = None,
                verdicts: tuple = ()) -> Decision:
        action, ordered = most_restrictive(findings)
        command = None
        if proposal is not None and action == Action.ALLOW:
            command = proposal.command
        elif proposal is not None and action == Action.DEGRADE:
            command = self.policy.degrade.apply(*proposal.command)
        elif action in (Action.ESCALATE, Action.FALLBACK):
            command = STOP
        if action.approves:
            self.approval = Approval(command, proposal_id, now.ros_ns,
                                     now.steady_ns + _ns(self.config.honoured))
            self._last_approved[proposer_id] = (proposal.epoch, proposal.seq)
        elif withdraw:
            self.approval = None
        self.counts[action.name] += 1
        for f in ordered:
            self.counts[f.reason.name] += 1
        latency = now.ros_ns - proposal.stamp_ns if proposal is not None else 0
        oracle_version = '+'.join(v.oracle_version for v, _ in verdicts)
        return Decision(proposal_id, proposer_id, digest, action, ordered, oracle_version,
                        self.policy.version, command, now.ros_ns, latency, subject, verdicts)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _answered(answer: VerifierAnswer) -> str:
    return (f'verifier: {"safe" if answer.safe else "unsafe"} (reason {answer.reason}'
            + (f', {answer.detail}' if answer.detail else '')
            + f') at ({answer.x:.2f}, {answer.y:.2f}), clearance {answer.min_clearance:.3f} m'
            )[:256]
