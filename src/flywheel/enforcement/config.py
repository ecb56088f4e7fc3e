"""Parameters of the Gate (node `gate`)."""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.proposal import ProposalLimits
from flywheel.settings import setting


@dataclass(frozen=True)
class GateConfig:
    policy_path: str = setting('policy.yaml', 'Risk policy YAML; relative paths resolve against '
                               "the package's config directory.", read_only=True)
    accepted_oracle_versions: tuple[str, ...] = setting(
        ['1.0.0'], 'Oracle versions whose verdicts count without governance '
        '(follow_governance false).', read_only=True)
    command_timeout: float = setting(0.3, 'No approved command is in force at the base longer '
                                     'than this (s, steady clock): the Gate honours it for '
                                     'command_timeout - delivery_margin, then publishes stop.',
                                     lo=0.01, hi=5.0, read_only=True)
    delivery_margin: float = setting(0.08, 'The part of command_timeout (s) kept for the trip to '
                                     'the base: its last command and the stop after it arrive '
                                     'within command_timeout + one tick even when a loaded '
                                     'machine delivers them this late.', lo=0.0, hi=5.0,
                                     read_only=True)
    tick_period: float = setting(0.02, 'While nothing is approved the Gate publishes stop this '
                                 'often (s), and expires late verdicts.', lo=0.001, hi=1.0,
                                 read_only=True)
    verdict_timeout: float = setting(0.25, 'A proposal with no verdict after this long (s) is '
                                     'decided NO_VERDICT.', lo=0.001, hi=5.0, read_only=True)
    signal_timeout: float = setting(0.2, 'A verdict stamped longer ago than this (s) is stale.',
                                    lo=0.001, hi=5.0, read_only=True)
    proposal_timeout: float = setting(0.5, 'A proposal stamped longer ago than this (s) is stale.',
                                      lo=0.001, hi=10.0, read_only=True)
    max_clock_skew: float = setting(0.05, 'A stamp (or proposer epoch) later than now by more '
                                    'than this (s) is refused as FUTURE_STAMP.', lo=0.0, hi=5.0,
                                    read_only=True)
    verify_timeout: float = setting(0.1, 'An ESCALATEd proposal waits this long (s, steady '
                                    "clock) for the verifier's answer (its check has a 50 ms "
                                    'deadline, plus transport); then it is decided '
                                    'VERIFY_TIMEOUT and the robot stays stopped.', lo=0.001,
                                    hi=5.0, read_only=True)
    odom_timeout: float = setting(0.1, 'Odometry older than this (s) cannot anchor a proposal: '
                                  'STALE_ODOMETRY.', lo=0.001, hi=5.0, read_only=True)
    max_pending: int = setting(64, 'Proposals held waiting for verdicts; the oldest is decided '
                               'NO_VERDICT (overload) when full.', lo=1, hi=10000, read_only=True)
    frame_id: str = setting('map', 'World frame every proposal and the odometry must be in.',
                            read_only=True)
    max_points: int = setting(200, 'Most trajectory points a proposal may carry (the message '
                              'allows 1000).', lo=1, hi=1000, read_only=True)
    max_horizon: float = setting(10.0, 'Longest trajectory (s).', lo=0.01, hi=600.0,
                                 read_only=True)
    max_sample_gap: float = setting(0.5, 'Longest time between two trajectory points (s).',
                                    lo=0.001, hi=60.0, read_only=True)
    kinematic_tolerance: float = setting(0.02, 'How far (m) a pose may lie from where the twist '
                                         'before it leads.', lo=0.0, hi=1.0, read_only=True)
    kinematic_yaw_tolerance: float = setting(0.02, 'The same for heading (rad).', lo=0.0, hi=1.0,
                                             read_only=True)
    max_seq_jump: int = setting(1000000, 'A proposal seq further ahead of the last one than this '
                                'is refused (SEQ_JUMP) and does not advance the replay floor.',
                                lo=1, hi=2**62, read_only=True)
    allowed_proposers: tuple[str, ...] = setting(['proposer'], 'Trusted proposer ids.',
                                                 read_only=True)
    authenticate: bool = setting(True, 'Count only verdicts signed by an Oracle key, status signed '
                                 'by a governance key and, for proposers the trust root names '
                                 'keys for, signed proposals. False only in tests and the '
                                 "demo's bypass run (logged loudly).", read_only=True)
    trust_root_path: str = setting('', 'The trust root (root.json) naming the signer keys; "" '
                                   'means $ROS_HOME/alignment_flywheel/keys/root.json.',
                                   read_only=True)
    follow_governance: bool = setting(False, 'Only the accepted versions of a fresh, signed '
                                      'OracleStatus from governance count (none until one is '
                                      'heard); accepted_oracle_versions is ignored.',
                                      read_only=True)
    max_status_age: float = setting(5.0, 'An OracleStatus stamped longer ago than this (s, wall '
                                    'clock) when it arrives is not believed.', lo=0.1, hi=600.0,
                                    read_only=True)
    autostart: bool = setting(True, 'Configure and activate on start (false: a lifecycle '
                              'manager or `ros2 lifecycle` drives it; stop is published until '
                              'it is active).', read_only=True)
    stamped: bool = setting(False, 'Publish geometry_msgs/TwistStamped on cmd_vel (stamp: when '
                            'each message is sent, so a base can drop stale ones) instead of '
                            'Twist.', read_only=True)
    output_priority: int = setting(10, 'Real-time (SCHED_FIFO) priority of the process that '
                                   'publishes cmd_vel, so the stop never waits behind other '
                                   'processes for CPU. Needs an rtprio limit or CAP_SYS_NICE; '
                                   'if refused it runs at normal priority (logged). 0: never '
                                   'ask.', lo=0, hi=99, read_only=True)

    def __post_init__(self):
        if self.delivery_margin >= self.command_timeout:
            raise ValueError(f'delivery_margin: must be shorter than command_timeout '
                             f'({self.command_timeout}), got {self.delivery_margin}')
        if self.tick_period >= self.honoured:
            raise ValueError(f'tick_period: must be shorter than command_timeout - '
                             f'delivery_margin ({self.honoured:.3f}), got {self.tick_period}')

    @property
    def honoured(self) -> float:
        """How long (s) the Gate honours an approval: the rest of command_timeout is the
        trip to the base."""
        return self.command_timeout - self.delivery_margin

    @property
    def hold(self) -> float:
        """Longest time (s) a command can be in force: what a verdict must have scored."""
        return self.command_timeout + self.tick_period

    def limits(self) -> ProposalLimits:
        return ProposalLimits(self.frame_id, self.max_points, tuple(self.allowed_proposers),
                              min_horizon=self.hold, max_horizon=self.max_horizon,
                              max_sample_gap=self.max_sample_gap,
                              kinematic_tolerance=self.kinematic_tolerance,
                              kinematic_yaw_tolerance=self.kinematic_yaw_tolerance)
