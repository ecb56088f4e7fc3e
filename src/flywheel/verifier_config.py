"""Parameters of the verifier node (node `verifier`): where its knowledge and key come from.

How thoroughly one proposal is checked is the verifier core's own config
(flywheel.verify.verifier.VerifierConfig), declared under ``check.`` on the same node; the two
together are config/flywheel.yaml's `verifier` block, field for field.
"""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.settings import setting


@dataclass(frozen=True)
class VerifierNodeConfig:
    spec_path: str = setting('oracle_spec.yaml', 'The Oracle spec whose zones, fence and limits '
                             'the verifier checks against (follow_governance false); relative '
                             "paths resolve against the package's config directory.",
                             read_only=True)
    follow_governance: bool = setting(False, "Check against governance's active release only "
                                      '(verified again here) and answer nothing safe until the '
                                      'first arrives; false uses spec_path.', read_only=True)
    authenticate: bool = setting(True, 'Sign every answer with signing_key_path and apply only '
                                 'release directives signed by a governance key. False only in '
                                 "tests and the demo's bypass run (logged loudly).",
                                 read_only=True)
    signing_key_path: str = setting('', 'Ed25519 key (PEM, mode 0600) the verifier signs its '
                                    'answers with; "" means '
                                    '$ROS_HOME/alignment_flywheel/keys/verifier.pem.',
                                    read_only=True)
    trust_root_path: str = setting('', 'The trust root (root.json) releases and directives are '
                                   'verified against; "" means '
                                   '$ROS_HOME/alignment_flywheel/keys/root.json.', read_only=True)
    ledger_path: str = setting('', 'The audit ledger whose recorded incidents the verifier '
                               'keeps out of (read only, re-read for new ones every '
                               'ledger_poll); "" means $ROS_HOME/alignment_flywheel/'
                               'audit.sqlite. No ledger yet: only the incidents topic counts.',
                               read_only=True)
    ledger_poll: float = setting(1.0, 'How often (s) the ledger is read for new incidents (on a '
                                 'thread of its own).', lo=0.05, hi=3600.0, read_only=True)
    max_incidents: int = setting(4096, 'Most incident regions kept (the newest); each is '
                                 'checked on every answer.', lo=1, hi=100000, read_only=True)
    frame_id: str = setting('map', 'World frame incidents must be reported in (others are '
                            'ignored, logged).', read_only=True)
    autostart: bool = setting(True, 'Configure and activate on start (false: a lifecycle '
                              'manager or `ros2 lifecycle` drives it; until active every answer '
                              'is unsafe).', read_only=True)
