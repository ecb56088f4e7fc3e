"""Parameters of the Proposer node (node `proposer`). The planner's own parameters live under the
`planner.` prefix and are passed to the plugin as keyword arguments."""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.settings import setting


@dataclass(frozen=True)
class ProposerConfig:
    proposer_id: str = setting('proposer', 'Id stamped on every proposal; the Gate must trust it.',
                               read_only=True)
    mode: str = setting('planner', '"planner": run the planner plugin at `rate`; "adapter": '
                        'turn every twist on cmd_vel_in into a proposal.', read_only=True)
    planner_plugin: str = setting('flywheel.proposer.route:RoutePlanner', 'Planner plugin, '
                           '"module:Class".', read_only=True)
    rate: float = setting(10.0, 'Proposals per second in planner mode.', lo=0.1, hi=1000.0,
                          read_only=True)
    frame_id: str = setting('map', 'World frame of the proposals.', read_only=True)
    adapter_horizon_points: int = setting(20, 'Adapter: points in the held-twist prediction.',
                                          lo=1, hi=10000, read_only=True)
    adapter_dt: float = setting(0.1, 'Adapter: seconds between predicted points.', lo=0.001,
                                hi=10.0, read_only=True)
    enable_stamped_cmd_vel: bool = setting(
        False, 'Adapter: cmd_vel_in carries geometry_msgs/TwistStamped (Nav2\'s default from '
        'Kilted on, ros2_control\'s diff_drive_controller) instead of Twist. Same name and meaning as Nav2\'s parameter, so one '
        'setting serves both; a publisher of the other type never connects.', read_only=True)
    fault_rate: float = setting(0.0, 'Chance per proposal that a fault episode starts (0: off).',
                                lo=0.0, hi=1.0, read_only=True)
    fault_seed: int = setting(0, 'Seed of the fault injector (same seed, same faults).', lo=0,
                              hi=2**31 - 1, read_only=True)
    fault_kinds: tuple[str, ...] = setting(
        ['SHORTCUT', 'SHORTCUT', 'OVERSPEED', 'NAN'], 'Faults to draw from (a kind listed twice '
        'is drawn twice as often).', read_only=True)
    fault_min_duration: float = setting(3.0, 'Shortest fault episode (s).', lo=0.01, hi=60.0,
                                        read_only=True)
    fault_max_duration: float = setting(7.0, 'Longest fault episode (s).', lo=0.01, hi=60.0,
                                        read_only=True)
    overspeed_factor: float = setting(2.5, 'OVERSPEED multiplies speeds by this.', lo=1.0,
                                      hi=100.0, read_only=True)
    odom_timeout: float = setting(0.2, 'Odometry older than this (s), or not in frame_id, is not '
                                  'planned from: no proposal until fresh odometry arrives.',
                                  lo=0.001, hi=10.0, read_only=True)
    authenticate: bool = setting(True, 'Sign every proposal with signing_key_path (a Gate '
                                 'requires it when the trust root names keys for proposer_id).',
                                 read_only=True)
    signing_key_path: str = setting('', 'Ed25519 key (PEM, mode 0600) the proposer signs with; '
                                    '"" means $ROS_HOME/alignment_flywheel/keys/proposer.pem.',
                                    read_only=True)
