"""Bond: the lifecycle manager's judgement of whether the nodes it watches are still there.

A node is kept while one of its get_state answers said "active" within ``timeout`` (as Nav2's
lifecycle manager keeps a node while its bond heartbeats arrive within ``bond_timeout``). It is
asked again every period whether or not the last question was answered: on a loaded machine an
answer can be slow, and a service response can be lost for good ("failed to send response"),
so one lost or late answer must neither end the graph nor leave the manager waiting on it.
An answer other than "active" ends it at once; so does silence for longer than ``timeout``.
The Gate's own deadlines never depend on this: a lost node is a reason to take the graph down,
not the robot's only stop.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Bond:
    names: tuple[str, ...]
    timeout_ns: int
    # name -> when an "active" answer last arrived (or the watch started), monotonic ns
    _alive_ns: dict[str, int] = field(default_factory=dict)

    def start(self, now_ns: int) -> None:
        self._alive_ns = {name: now_ns for name in self.names}

    def answer(self, name: str, state: str, now_ns: int) -> str | None:
        """Take one get_state answer; the reason to end the graph, or None."""
        if state != 'active':
            return f'{name} is {state}'
        self._alive_ns[name] = max(self._alive_ns.get(name, now_ns), now_ns)
        return None

    def overdue(self, now_ns: int) -> str | None:
        """The first node whose last "active" answer is older than the timeout, as a reason."""
        for name in self.names:
            silent = now_ns - self._alive_ns.get(name, now_ns)
            if silent > self.timeout_ns:
                return f'{name} has not answered that it is active for {silent * 1e-9:.1f} s'
        return None
