"""Every error the library raises, grouped by who is at fault."""


class FlywheelError(Exception):
    """Base of every error raised on purpose by flywheel."""


class SpecError(FlywheelError, ValueError):
    """A configuration document (Oracle spec, risk policy, world, node config) is malformed.

    The message names the offending field and value, e.g. ``footprint: need >= 3 vertices, got 2``.
    """

    def __init__(self, field: str, problem: str):
        super().__init__(f'{field}: {problem}')
        self.field = field
        self.problem = problem


class PlannerLoadError(FlywheelError):
    """A planner plugin named as ``module:Class`` cannot be imported or built."""


class GraphError(FlywheelError):
    """A node process of the graph died, or the graph never came up."""


class LedgerError(FlywheelError):
    """The audit ledger cannot be opened or written."""


class ChainBrokenError(LedgerError):
    """The ledger's hash chain or a signed checkpoint does not verify.

    ``seq`` is the first bad sequence number.
    """

    def __init__(self, seq: int, problem: str):
        super().__init__(f'record {seq}: {problem}')
        self.seq = seq
        self.problem = problem


class IncidentError(FlywheelError, ValueError):
    """A malformed incident report; the message says which field and why."""


class ReleaseError(FlywheelError):
    """An Oracle release (or trust root) is refused. Nothing was loaded."""


class CorruptBundleError(ReleaseError):
    """The bundle is not a readable archive, or is truncated."""


class UnsafeBundleError(ReleaseError):
    """The archive holds something other than plain files with known names (paths, links)."""


class OversizeBundleError(ReleaseError):
    """The bundle or one of its files is larger than allowed."""


class UnsignedReleaseError(ReleaseError):
    """Fewer valid signatures by trusted keys than the threshold (bad or unknown signatures)."""


class ExpiredReleaseError(ReleaseError):
    """The release's signed metadata has expired."""


class RollbackError(ReleaseError):
    """The release number is not newer than the installed one (rollback or replay)."""


class TargetMismatchError(ReleaseError):
    """A file's length or hash differs from what the signed metadata pins."""


class ReleaseSchemaError(ReleaseError):
    """The metadata or the Oracle spec inside the bundle is malformed."""


class RootRotationError(ReleaseError):
    """A new trust root is not signed by the threshold of both the old and the new root keys."""
