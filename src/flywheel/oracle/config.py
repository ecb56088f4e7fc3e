"""Parameters of the Oracle node (node `oracle`)."""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.settings import setting


@dataclass(frozen=True)
class OracleConfig:
    spec_path: str = setting('oracle_spec.yaml', 'Oracle spec YAML; relative paths resolve '
                             "against the package's config directory.", read_only=True)
    max_points: int = setting(200, 'Most trajectory points a proposal may carry (the message '
                              'allows 1000).', lo=1, hi=1000, read_only=True)
    allowed_proposers: tuple[str, ...] = setting(['proposer'], 'Trusted proposer ids.',
                                                 read_only=True)
    authenticate: bool = setting(True, 'Sign every SafetySignals with signing_key_path and apply '
                                 'only release directives signed by a governance key. False '
                                 "only in tests and the demo's bypass run (logged loudly).",
                                 read_only=True)
    signing_key_path: str = setting('', 'Ed25519 key (PEM, mode 0600) the Oracle signs with; "" '
                                    'means $ROS_HOME/alignment_flywheel/keys/oracle.pem.',
                                    read_only=True)
    trust_root_path: str = setting('', 'The trust root (root.json): releases and their signer '
                                   'keys are verified against it; "" means '
                                   '$ROS_HOME/alignment_flywheel/keys/root.json.', read_only=True)
    follow_governance: bool = setting(False, 'Run only the releases governance sends, verified '
                                      'again here, and score nothing until the first arrives; '
                                      'false runs spec_path.', read_only=True)
    autostart: bool = setting(True, 'Configure and activate on start (false: a lifecycle '
                              'manager or `ros2 lifecycle` drives it).', read_only=True)
    shed_age: float = setting(0.1, 'A proposal older than this (s) when its turn comes is '
                              'answered unscored (SHED, the Gate decides OVERLOAD): overload '
                              'drains instead of piling up.', lo=0.001, hi=10.0, read_only=True)
