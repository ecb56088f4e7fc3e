"""lifecycle_manager_node: brings the lifecycle nodes up in order and keeps watching them, in the
spirit of nav2_lifecycle_manager.

Bring-up: configure then activate each node of ``node_names`` in order (governance, Oracle, Gate:
the Gate last, so it passes nothing before what it depends on runs). Then a bond-like heartbeat:
every ``heartbeat_period`` each node must answer get_state with "active" within
``transition_timeout``. A failed transition or a lost or inactive node ends the manager with exit
code 1 after asking the Gate to deactivate (it then publishes stop); `flywheel up` and the launch
files stop the whole graph when it exits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node

from flywheel.ros.params import declare_config
from flywheel.ros.run import run_node
from flywheel.settings import setting

BRING_UP = ((Transition.TRANSITION_CONFIGURE, 'inactive'),
            (Transition.TRANSITION_ACTIVATE, 'active'))


@dataclass(frozen=True)
class LifecycleManagerConfig:
    node_names: tuple[str, ...] = setting(['oracle', 'gate'], 'Lifecycle nodes to bring up, in '
                                          'order (relative names resolve in this namespace).',
                                          read_only=True)
    heartbeat_period: float = setting(1.0, 'How often every node must answer that it is active '
                                      '(s).', lo=0.05, hi=60.0, read_only=True)
    transition_timeout: float = setting(15.0, 'Longest wait for a service or an answer (s).',
                                        lo=0.1, hi=600.0, read_only=True)


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
        self._pending: dict[str, tuple] = {}
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
            self.get_logger().info('all nodes active; watching them')
            return
        node, transition, goal = self._steps[0]
        waited = time.monotonic() - self._since
        future = self._pending.get('bring_up')
        if future is None:
            if not self._change[node].service_is_ready():
                if waited > self.config.transition_timeout:
                    self._fail(f'{node} never offered change_state')
                return
            self._pending['bring_up'] = self._change[node].call_async(
                ChangeState.Request(transition=Transition(id=transition)))
            self._since = time.monotonic()
            return
        if not future.done():
            if waited > self.config.transition_timeout:
                self._fail(f'{node}: no answer to transition {transition}')
            return
        del self._pending['bring_up']
        if not future.result().success:
            self._fail(f'{node} failed to reach {goal}')
            return
        self.get_logger().info(f'{node} is {goal}')
        self._steps.pop(0)
        self._since = time.monotonic()

    def _heartbeat(self) -> None:
        if not self._up or self.exit_code is not None:
            return
        for node, future in list(self._pending.items()):
            if not future.done():
                self._fail(f'{node} did not answer get_state within '
                           f'{self.config.heartbeat_period} s')
                return
            state = future.result().current_state.label
            if state != 'active':
                self._fail(f'{node} is {state}')
                return
        self._pending = {n: self._get[n].call_async(GetState.Request())
                         for n in self.config.node_names}

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
