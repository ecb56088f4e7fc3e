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
    max_bundle_bytes: int = setting(MAX_BUNDLE_BYTES, 'Larger bundles are refused unread.',
                                    lo=1024, hi=1 << 30, read_only=True)
    autostart: bool = setting(True, 'Configure and activate on start (no lifecycle manager).',
                              read_only=True)
