"""lifecycle_manager_node: brings the lifecycle nodes up in order and keeps watching them, in the
spirit of nav2_lifecycle_manager.

Bring-up: configure then activate each node of ``node_names`` in order (governance, Oracle, Gate:
the Gate last, so it passes nothing before what it depends on runs). A transition's answer that
has not come within ``heartbeat_period`` is checked with get_state, once a period: service
responses can be lost on a loaded graph (waiting for one until ``heartbeat_timeout``, 30 s in a
fleet, once kept a robot's Oracle unconfigured that long), and a node already in the goal state
needs no second transition. Then a
bond-like heartbeat (flywheel.bond): every ``heartbeat_period`` each node is asked get_state,
whether or not it answered the last time, and must have answered "active" within
``heartbeat_timeout``. A failed transition, a node not active, or one silent for longer ends the
manager with exit code 1 after asking the Gate to deactivate (it then publishes stop); `flywheel
up` and the launch files stop the whole graph when it exits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node

from flywheel.bond import Bond
from flywheel.ros.params import declare_config
from flywheel.ros.run import run_node
from flywheel.settings import setting

BRING_UP = ((Transition.TRANSITION_CONFIGURE, 'inactive'),
            (Transition.TRANSITION_ACTIVATE, 'active'))
# get_state questions a node may leave unanswered before the oldest is given up on (its
# response lost): keeps a silent node from growing the client's pending requests.
MAX_UNANSWERED = 4


@dataclass(frozen=True)
class LifecycleManagerConfig:
    node_names: tuple[str, ...] = setting(['oracle', 'gate'], 'Lifecycle nodes to bring up, in '
                                          'order (relative names resolve in this namespace).',
                                          read_only=True)
    heartbeat_period: float = setting(1.0, 'How often every node is asked whether it is active '
                                      '(s).', lo=0.05, hi=60.0, read_only=True)
    heartbeat_timeout: float = setting(4.0, 'Longest a node may go without answering that it is '
                                       'active before the graph is taken down (s; Nav2\'s '
                                       'bond_timeout). Must exceed heartbeat_period.',
                                       lo=0.1, hi=600.0, read_only=True)
    transition_timeout: float = setting(15.0, 'Longest wait for a service or a transition (s).',
                                        lo=0.1, hi=600.0, read_only=True)

    def __post_init__(self):
        if not self.heartbeat_timeout > self.heartbeat_period:
            raise ValueError(f'heartbeat_timeout: must exceed heartbeat_period '
                             f'({self.heartbeat_period}), got {self.heartbeat_timeout}')


class LifecycleManager(Node):
    def __init__(self, **kwargs):
        super().__init__('lifecycle_manager', **kwargs)
        self.config = declare_config(self, LifecycleManagerConfig)
        self.exit_code: int | None = None
        self._get = {n: self.create_client(GetState, f'{n}/get_state')
                     for n in self.config.node_names}
        self._change = {n: self.create_client(ChangeState, f'{n}/change_state')
                        for n in self.config.node_names}
        self._steps = [(n, t, goal) for n in self.config.node_names for t, goal in BRING_UP]
        self._transition = None     # the bring-up step's change_state future
        self._check = None          # its get_state future, once the answer is overdue
        self._checked = 0.0         # when that was last asked (monotonic s)
        self._asked: dict[str, list] = {n: [] for n in self.config.node_names}
        self._bond = Bond(tuple(self.config.node_names), int(self.config.heartbeat_timeout * 1e9))
        self._since = time.monotonic()
        self._up = False
        self.create_timer(0.05, self._bring_up)
        self.create_timer(self.config.heartbeat_period, self._heartbeat)
        self.get_logger().info(f'bringing up {", ".join(self.config.node_names)}')

    def _bring_up(self) -> None:
        if self._up or self.exit_code is not None:
            return
        if not self._steps:
            self._up = True
            self._bond.start(time.monotonic_ns())
            self.get_logger().info('all nodes active; watching them')
            return
        node, transition, goal = self._steps[0]
        waited = time.monotonic() - self._since
        if self._transition is None:
            if not self._change[node].service_is_ready():
                if waited > self.config.transition_timeout:
                    self._fail(f'{node} never offered change_state')
                return
            self._transition = self._change[node].call_async(
                ChangeState.Request(transition=Transition(id=transition)))
            self._since = time.monotonic()
            return
        if self._transition.done():
            if not self._transition.result().success:
                self._fail(f'{node} failed to reach {goal}')
                return
            self._step_done(node, goal)
            return
        if self._check is not None and self._check.done():
            state = self._check.result().current_state.label
            self._check = None
            if state == goal:
                self.get_logger().warning(f'{node} is {goal}; the answer to its transition was '
                                          'lost or is late')
                self._change[node].remove_pending_request(self._transition)
                self._step_done(node, goal)
                return
        if waited > self.config.transition_timeout:
            self._fail(f'{node}: no answer to transition {transition}')
        elif (waited > self.config.heartbeat_period and self._check is None
              and time.monotonic() - self._checked > self.config.heartbeat_period):
            self._check = self._get[node].call_async(GetState.Request())
            self._checked = time.monotonic()

    def _step_done(self, node: str, goal: str) -> None:
        self.get_logger().info(f'{node} is {goal}')
        self._steps.pop(0)
        self._transition = self._check = None
        self._since = time.monotonic()

    def _heartbeat(self) -> None:
        if not self._up or self.exit_code is not None:
            return
        now_ns = time.monotonic_ns()
        for node, asked in self._asked.items():
            for future in [f for f in asked if f.done()]:
                asked.remove(future)
                why = self._bond.answer(node, future.result().current_state.label, now_ns)
                if why:
                    self._fail(why)
                    return
        why = self._bond.overdue(now_ns)
        if why:
            self._fail(why)
            return
        for node, asked in self._asked.items():
            if len(asked) >= MAX_UNANSWERED:
                self._get[node].remove_pending_request(asked.pop(0))
            asked.append(self._get[node].call_async(GetState.Request()))

    def _fail(self, why: str) -> None:
        """Stop the robot first (the Gate deactivates, publishing stop), then end."""
        self.get_logger().error(f'{why}: deactivating the gate and shutting the graph down')
        for node in self.config.node_names:
            if node.rsplit('/', 1)[-1] == 'gate' and self._change[node].service_is_ready():
                self._change[node].call_async(ChangeState.Request(
                    transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
        self.exit_code = 1


def main(argv=None) -> int:
    return run_node('lifecycle_manager', LifecycleManager, argv)


if __name__ == '__main__':
    raise SystemExit(main())
