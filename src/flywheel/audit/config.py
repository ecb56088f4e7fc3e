"""Parameters of the audit node (node `audit`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flywheel.settings import setting


@dataclass(frozen=True)
class AuditConfig:
    ledger_path: str = setting('', 'Ledger file; "" means $ROS_HOME/alignment_flywheel/'
                               'audit.sqlite (ROS_HOME defaults to ~/.ros).', read_only=True)
    key_path: str = setting('', 'Ed25519 key that signs checkpoints, created if missing; "" means '
                            'audit_key.pem beside the ledger.', read_only=True)
    commit_interval: float = setting(0.1, 'Every record is committed (and signed) within this '
                                     'long (s) of its arrival: what a kill -9 can lose (a '
                                     'restarted audit takes it again from the publishers\' '
                                     'history).', lo=0.001, hi=10.0, read_only=True)
    link_window: float = setting(5.0, 'An incident without links is linked to the decisions of '
                                 'this many seconds before it (may change live; each change is '
                                 'recorded).', lo=0.0, hi=3600.0)
    frame_id: str = setting('map', 'World frame incidents must be reported in.', read_only=True)

    def ledger_file(self, ros_home: Path) -> Path:
        return Path(self.ledger_path).expanduser() if self.ledger_path else (
            ros_home / 'alignment_flywheel' / 'audit.sqlite')

    def key_file(self, ros_home: Path) -> Path:
        return Path(self.key_path).expanduser() if self.key_path else (
            self.ledger_file(ros_home).with_name('audit_key.pem'))
