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
