"""Parameters of the Oracle node (node `oracle`)."""
from __future__ import annotations

from dataclasses import dataclass

from flywheel.settings import setting


@dataclass(frozen=True)
class OracleConfig:
    spec_path: str = setting('oracle_spec.yaml', 'Oracle spec YAML; relative paths resolve '
                             "against the package's config directory.", read_only=True)
    max_points: int = setting(200, 'Most trajectory points a proposal may carry.', lo=1,
                              hi=100000, read_only=True)
    allowed_proposers: tuple[str, ...] = setting(['proposer'], 'Trusted proposer ids.',
                                                 read_only=True)
    trust_root_path: str = setting('', 'root.json to verify releases from governance with before '
                                   'swapping to them; "" runs spec_path only.', read_only=True)
