"""The Gate: turns (proposal, verdict) pairs into decisions and publishes only approved commands.

Invariants, each tested:
- A non-zero command is released only by an ALLOW/DEGRADE decision on a verdict whose digest equals
  the digest the Gate computed for the proposal it holds, from an accepted Oracle version, fresh.
- Every proposal gets exactly one Decision (a verdict, a rejection, or NO_VERDICT on timeout).
  DDS may deliver a verdict before the proposal it names (the Oracle's path can be faster than the
  Gate's own subscription); such a verdict waits up to ``verdict_timeout`` for its proposal, and
  is decided UNKNOWN_PROPOSAL only if none comes.
- On its own clock: `tick` says stop unless an approved command will still be younger than
  ``command_timeout`` at the next tick, so no approval is honoured for longer than that.
Time is passed in (``now_ns``); the Gate never reads a clock.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from flywheel.enforcement.decision import Action, Decision, Finding, Reason, most_restrictive
from flywheel.enforcement.policy import RiskPolicy
from flywheel.proposal import Proposal, ProposalLimits, check_proposal
from flywheel.settings import setting
from flywheel.signals import SafetySignals

STOP = (0.0, 0.0)
DECIDED_MEMORY = 4096


@dataclass(frozen=True)
class GateConfig:
    """Parameters of the Gate (node `gate`)."""

    policy_path: str = setting('policy.yaml', 'Risk policy YAML; relative paths resolve against '
                               "the package's config directory.", read_only=True)
    accepted_oracle_versions: tuple[str, ...] = setting(
        ['1.0.0'], 'Oracle versions whose verdicts count.', read_only=True)
    command_timeout: float = setting(0.3, 'An approved command is honoured this long (s); then '
                                     'the Gate publishes stop.', lo=0.01, hi=5.0, read_only=True)
    tick_period: float = setting(0.02, 'Gate clock period (s): the fail-closed check runs this '
                                 'often.', lo=0.001, hi=1.0, read_only=True)
    verdict_timeout: float = setting(0.25, 'A proposal with no verdict after this long (s) is '
                                     'decided NO_VERDICT.', lo=0.001, hi=5.0, read_only=True)
    signal_timeout: float = setting(0.2, 'A verdict stamped longer ago than this (s) is stale.',
                                    lo=0.001, hi=5.0, read_only=True)
    proposal_timeout: float = setting(0.5, 'A proposal stamped longer ago than this (s) is stale.',
                                      lo=0.001, hi=10.0, read_only=True)
    max_pending: int = setting(64, 'Proposals held waiting for verdicts; the oldest is decided '
                               'NO_VERDICT when full.', lo=1, hi=10000, read_only=True)
    frame_id: str = setting('map', 'World frame every proposal must be in.', read_only=True)
    max_points: int = setting(200, 'Most trajectory points a proposal may carry.', lo=1,
                              hi=100000, read_only=True)
    allowed_proposers: tuple[str, ...] = setting(['proposer'], 'Trusted proposer ids.',
                                                 read_only=True)
    follow_governance: bool = setting(True, 'Take the accepted Oracle versions from governance '
                                      'status once it is heard (it replaces '
                                      'accepted_oracle_versions).', read_only=True)

    def __post_init__(self):
        if self.tick_period >= self.command_timeout:
            raise ValueError(f'tick_period: must be shorter than command_timeout '
                             f'({self.command_timeout}), got {self.tick_period}')

    def limits(self) -> ProposalLimits:
        return ProposalLimits(self.frame_id, self.max_points, tuple(self.allowed_proposers))


@dataclass
class _Held:
    proposal: Proposal
    received_ns: int


class Gate:
    """Holds proposals until their verdicts arrive; decides; tracks the one approved command."""

    def __init__(self, policy: RiskPolicy, config: GateConfig):
        self.policy = policy
        self.config = config
        self.accepted_versions = frozenset(config.accepted_oracle_versions)
        self._limits = config.limits()
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._last_seen: dict[str, tuple[int, int]] = {}   # proposer -> (seq, stamp_ns)
        self._last_approved_seq: dict[str, int] = {}
        self._approved_ns: int | None = None
        # Recently decided proposal ids: their late verdicts are dropped, not decided twice.
        self._decided: OrderedDict[str, None] = OrderedDict()
        # Verdicts that arrived before their proposal: id -> (signals, received_ns).
        self._early: OrderedDict[str, tuple[SafetySignals, int]] = OrderedDict()

    # -- inputs ---------------------------------------------------------------------------------

    def on_proposal(self, proposal: Proposal, now_ns: int) -> list[Decision]:
        """Hold a well-formed proposal for its verdict; decide a malformed one at once."""
        findings = [Finding(Action.BLOCK, Reason.of_defect(d), detail)
                    for d, detail in check_proposal(proposal, self._limits)]
        last = self._last_seen.get(proposal.proposer_id)
        if last and proposal.seq <= last[0] and proposal.stamp_ns <= last[1]:
            findings.append(Finding(Action.BLOCK, Reason.REPLAYED_SEQ,
                                    f'seq {proposal.seq} after {last[0]}'))
        if now_ns - proposal.stamp_ns > self._ns(self.config.proposal_timeout):
            findings.append(Finding(Action.BLOCK, Reason.STALE_PROPOSAL,
                                    f'{(now_ns - proposal.stamp_ns) * 1e-9:.3f}s old'))
        if findings or proposal.proposal_id in self._held:
            if proposal.proposal_id in self._held:
                findings.append(Finding(Action.BLOCK, Reason.REPLAYED_SEQ, 'duplicate proposal_id'))
            return [self._decide(proposal, findings, '', now_ns)]
        self._last_seen[proposal.proposer_id] = (proposal.seq, proposal.stamp_ns)
        decisions = []
        if len(self._held) >= self.config.max_pending:
            _, oldest = self._held.popitem(last=False)
            decisions.append(self._no_verdict(oldest.proposal, now_ns, 'pending queue full'))
        self._held[proposal.proposal_id] = _Held(proposal, now_ns)
        early = self._early.pop(proposal.proposal_id, None)
        if early is not None:
            decisions.append(self.on_signals(early[0], now_ns))
        return decisions

    def on_signals(self, signals: SafetySignals, now_ns: int) -> Decision | None:
        """Decide the held proposal this verdict names; a verdict that does not bind is BLOCK.

        None for a late verdict on a proposal already decided (it was rejected on arrival or
        timed out), and for a verdict that came before its proposal (it waits for it).
        """
        held = self._held.pop(signals.proposal_id, None)
        if held is None:
            if signals.proposal_id not in self._decided:
                self._early[signals.proposal_id] = (signals, now_ns)
                if len(self._early) > self.config.max_pending:
                    _, (oldest, _) = self._early.popitem(last=False)
                    return self._unknown(oldest, now_ns)
            return None
        proposal = held.proposal
        findings = []
        if signals.proposal_digest != proposal.digest:
            findings.append(Finding(Action.BLOCK, Reason.DIGEST_MISMATCH,
                                    f'verdict names {signals.proposal_digest[:16]}...'))
        if signals.oracle_version not in self.accepted_versions:
            findings.append(Finding(Action.BLOCK, Reason.UNKNOWN_ORACLE_VERSION,
                                    f'oracle_version={signals.oracle_version!r}'))
        if not 0 <= now_ns - signals.stamp_ns <= self._ns(self.config.signal_timeout):
            findings.append(Finding(Action.BLOCK, Reason.STALE_VERDICT,
                                    f'verdict stamped {(now_ns - signals.stamp_ns) * 1e-9:.3f}s '
                                    'ago'))
        if now_ns - proposal.stamp_ns > self._ns(self.config.proposal_timeout):
            findings.append(Finding(Action.BLOCK, Reason.STALE_PROPOSAL,
                                    f'{(now_ns - proposal.stamp_ns) * 1e-9:.3f}s old'))
        if proposal.seq <= self._last_approved_seq.get(proposal.proposer_id, -1):
            findings.append(Finding(Action.BLOCK, Reason.STALE_PROPOSAL,
                                    'superseded by a newer approved proposal'))
        if not findings:
            findings = self.policy.assess(signals)
        return self._decide(proposal, findings, signals.oracle_version, now_ns)

    def tick(self, now_ns: int) -> tuple[list[Decision], bool]:
        """Expire proposals whose verdict is late; say whether the robot must be stopped now."""
        decisions = []
        deadline = now_ns - self._ns(self.config.verdict_timeout)
        while self._early and next(iter(self._early.values()))[1] <= deadline:
            _, (signals, _) = self._early.popitem(last=False)
            decisions.append(self._unknown(signals, now_ns))
        while self._held:
            pid, held = next(iter(self._held.items()))
            if held.received_ns > deadline:
                break
            del self._held[pid]
            decisions.append(self._no_verdict(held.proposal, now_ns, 'verdict timed out'))
        # Stop at the last tick before the approval runs out, not the first tick after it: an
        # approval is never honoured for longer than command_timeout.
        return decisions, not self.has_fresh_approval(now_ns + self._ns(self.config.tick_period))

    def accept_versions(self, versions) -> None:
        """From now on only verdicts of these Oracle versions count (empty: none does)."""
        self.accepted_versions = frozenset(versions)

    def fallback(self, proposal_id: str, proposer_id: str, finding: Finding,
                 now_ns: int) -> Decision:
        """Stop now and withdraw the approved command (for failures outside the policy)."""
        self._approved_ns = None
        return Decision(proposal_id, proposer_id, '', Action.FALLBACK, (finding,), '',
                        self.policy.version, STOP, now_ns, 0)

    def has_fresh_approval(self, now_ns: int) -> bool:
        return (self._approved_ns is not None
                and now_ns - self._approved_ns <= self._ns(self.config.command_timeout))

    # -- decisions ------------------------------------------------------------------------------

    def _unknown(self, signals: SafetySignals, now_ns: int) -> Decision:
        """A verdict whose proposal never came: recorded, never honoured."""
        return Decision(signals.proposal_id, '', signals.proposal_digest, Action.BLOCK,
                        (Finding(Action.BLOCK, Reason.UNKNOWN_PROPOSAL,
                                 'no proposal with this id (late, replayed or forged)'),),
                        signals.oracle_version, self.policy.version, None, now_ns, 0)

    def _no_verdict(self, proposal: Proposal, now_ns: int, why: str) -> Decision:
        return self._decide(proposal, [Finding(Action.BLOCK, Reason.NO_VERDICT, why)], '', now_ns,
                            withdraw=False)

    def _decide(self, proposal: Proposal, findings: list[Finding], oracle_version: str,
                now_ns: int, withdraw: bool = True) -> Decision:
        action, ordered = most_restrictive(findings)
        self._decided[proposal.proposal_id] = None
        if len(self._decided) > DECIDED_MEMORY:
            self._decided.popitem(last=False)
        command = None
        if action == Action.ALLOW:
            command = proposal.command
        elif action == Action.DEGRADE:
            command = self.policy.degrade.apply(*proposal.command)
        elif action in (Action.ESCALATE, Action.FALLBACK):
            command = STOP
        if action.approves:
            self._approved_ns = now_ns
            self._last_approved_seq[proposal.proposer_id] = proposal.seq
        elif withdraw:
            self._approved_ns = None
        return Decision(proposal.proposal_id, proposal.proposer_id, proposal.digest, action,
                        ordered, oracle_version, self.policy.version, command, now_ns,
                        now_ns - proposal.stamp_ns)

    @staticmethod
    def _ns(seconds: float) -> int:
        return int(seconds * 1e9)
