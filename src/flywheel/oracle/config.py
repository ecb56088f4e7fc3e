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
    trust_root_path: str = setting('', 'root.json: follow governance, verifying each release '
                                   'before swapping to it, and score nothing until the first '
                                   'arrives; "" runs spec_path only.', read_only=True)
    shed_age: float = setting(0.1, 'A proposal older than this (s) when its turn comes is '
                              'answered unscored (SHED, the Gate decides OVERLOAD): overload '
                              'drains instead of piling up.', lo=0.001, hi=10.0, read_only=True)
