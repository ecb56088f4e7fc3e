"""Parameters of the governance node (node `governance`)."""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.release.bundle import MAX_BUNDLE_BYTES
from flywheel.settings import setting


@dataclass(frozen=True)
class GovernanceConfig:
    store_dir: str = setting('', 'Release store; "" means $ROS_HOME/alignment_flywheel/releases.',
                             read_only=True)
    trust_root_path: str = setting('', 'root.json installed on the first start (afterwards the '
                                   "store's root, rotated only by signed releases).",
                                   read_only=True)
    max_bundle_bytes: int = setting(MAX_BUNDLE_BYTES, 'Larger bundles are refused unread (and '
                                    'no bundle unpacks to more than MAX_UNPACKED_BYTES, ~4.2 MB).',
                                    lo=1024, hi=1 << 30, read_only=True)
    signing_key_path: str = setting('', 'Ed25519 key (PEM, mode 0600) that signs OracleStatus and '
                                    'OracleRelease; "" means $ROS_HOME/alignment_flywheel/keys/'
                                    'governance.pem.', read_only=True)
    authenticate: bool = setting(True, 'Sign status and release directives (Gates and Oracles '
                                 'that authenticate refuse unsigned ones). False only in tests.',
                                 read_only=True)
    rollout_plan_path: str = setting('rollout.yaml', 'The staged rollout plan for releases that '
                                     'carry none (relative paths: the package config '
                                     'directory).', read_only=True)
    policy_path: str = setting('policy.yaml', "The Gate's risk policy, to run the regression "
                               'suites releases carry.', read_only=True)
    robots: tuple[str, ...] = setting([''], 'The robots governed, by namespace (a fleet: '
                                      '["/robot_0", "/robot_1", ...]; "" is this node\'s own); '
                                      'a canary runs on the first canary_robots of them first.',
                                      read_only=True)
    swap_timeout: float = setting(10.0, 'After installing a release, the version the Oracle '
                                  'still runs keeps counting until the Oracle reports the new '
                                  'one, at most this long (s); then only the new one counts.',
                                  lo=0.1, hi=600.0, read_only=True)
    overlay_coverage: float = setting(1.0, 'A region the verifier verified safe counts at '
                                      'least this audit coverage in the coverage overlay '
                                      '(so c_a there is at most 1 - this).', lo=0.01, hi=1.0,
                                      read_only=True)
    max_verified_extent: float = setting(10.0, 'A verified region wider or taller than this (m) '
                                         'does not enter the coverage overlay.', lo=0.1,
                                         hi=1000.0, read_only=True)
    autostart: bool = setting(True, 'Configure and activate on start (no lifecycle manager).',
                              read_only=True)
