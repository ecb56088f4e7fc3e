"""GovernanceEvent as the audit records it: the event kinds, one name each, and the record kind
each lands in.

GovernanceEventKind mirrors GovernanceEvent.EVENT_* one to one (a test holds them together); the
ledger spells an event by its lower-case name ('installed', 'transition'), as it always has. A
lifecycle transition of the governance node is a LIFECYCLE record (like the audit's own start and
stop); every other event concerns a release and is a RELEASE record.
"""
from __future__ import annotations

import enum
import re

from flywheel.audit.record import RecordKind


class GovernanceEventKind(enum.IntEnum):
    SUBMITTED = 0
    VERIFIED = 1
    REJECTED = 2
    INSTALLED = 3
    ROLLED_BACK = 4
    TRANSITION = 5       # a lifecycle transition of the governance node (reason names it)
    DROPPED = 6          # a retained release no longer verifies and left the rollback slot
    SWAP_TIMEOUT = 7     # the Oracle did not confirm a swap in time
    ROOT_INSTALLED = 8   # a trust root was installed from the bootstrap file
    STAGE_STARTED = 9    # a staged rollout's stage started (shadow, canary, full)
    STAGE_PASSED = 10
    STAGE_FAILED = 11
    PAUSED = 12          # inconclusive: waits for an operator
    PROMOTED = 13        # the candidate became the active release
    ABORTED = 14         # the candidate was dropped
    RESUMED = 15         # a rollout resumed after a restart
    OVERLAY = 16         # the coverage overlay changed (a region verified safe)

    @property
    def record_name(self) -> str:
        return self.name.lower()


# "configure: unconfigured -> inactive": the transition, the state it left, the state it reached.
_TRANSITION = re.compile(r'^\s*(?P<transition>\w+)\s*:\s*(?P<start>\w+)\s*->\s*(?P<goal>\w+)\s*$')


def event_name(code: int) -> str | int:
    """The record's name of an event code; an unknown code is kept as the number it was, so the
    ledger records what was received rather than dropping it."""
    try:
        return GovernanceEventKind(code).record_name
    except ValueError:
        return int(code)


def event_code(name: str | int) -> int:
    """The message constant of a recorded event name (or of a number kept as received)."""
    return name if isinstance(name, int) else GovernanceEventKind[name.upper()].value


def record_kind(body: dict) -> RecordKind:
    return (RecordKind.LIFECYCLE if body['event'] == GovernanceEventKind.TRANSITION.record_name
            else RecordKind.RELEASE)


def transition_fields(reason: str) -> dict[str, str]:
    """{'transition', 'start', 'goal'} read from a transition's reason, or {} when the reason does
    not have the form "configure: unconfigured -> inactive" (the reason itself is always kept)."""
    match = _TRANSITION.match(reason)
    return match.groupdict() if match else {}
