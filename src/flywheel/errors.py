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


class SpecLimitError(SpecError):
    """A document exceeds a size limit (YAML nodes, nesting depth, scalar length, vertices,
    polygons, coverage cells); refused before anything is built from it."""


class YamlAliasError(SpecLimitError):
    """A document uses YAML anchors or aliases, refused because they multiply its size."""


class InputError(FlywheelError):
    """An operator's input cannot be read: a missing or unreadable file, a malformed status file."""


class PlannerLoadError(FlywheelError):
    """A planner plugin named as ``module:Class`` cannot be imported or built."""


class GraphError(FlywheelError):
    """A node process of the graph died, or the graph never came up."""


class NodeUnreachableError(GraphError):
    """No node answers the service (governance or audit: not running, not active, another
    ROS_DOMAIN_ID or namespace)."""


class NodeTimeoutError(NodeUnreachableError):
    """The node took the request but gave no answer in time; it may still act on it."""


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
    """An Oracle release (or trust root) is refused. Nothing was loaded.

    ``bundle_sha256`` (hex, "" when the bytes could not be hashed) and ``key_ids`` (the key ids
    that signed the refused metadata, verified or not; () when unknown) say what was refused and
    who submitted it; `verify_submission` fills them in.
    """

    bundle_sha256: str = ''
    key_ids: tuple[str, ...] = ()


class CorruptBundleError(ReleaseError):
    """The bundle is not a readable archive, or is truncated."""


class UnsafeBundleError(ReleaseError):
    """The archive holds something other than plain files with known names (paths, links, PAX or
    GNU extended headers, headers other than the canonical ones)."""


class TrailingDataError(UnsafeBundleError):
    """Bytes outside the archive's members: after the gzip stream, in a member's padding, or
    anything but zero blocks after the last member."""


class OversizeBundleError(ReleaseError):
    """The bundle or one of its files is larger than allowed."""


class UnsignedReleaseError(ReleaseError):
    """Fewer valid signatures by trusted keys than the threshold (bad or unknown signatures)."""


class ExpiredReleaseError(ReleaseError):
    """The release's signed metadata has expired."""


class ExpiredRootError(ExpiredReleaseError):
    """The trust root a release would be verified against has expired (rotate it first)."""


class RollbackError(ReleaseError):
    """The release number is not newer than the installed one (rollback or replay)."""


class TargetMismatchError(ReleaseError):
    """A file's length or hash differs from what the signed metadata pins."""


class UnpinnedFileError(TargetMismatchError):
    """The bundle holds a file the signed metadata does not pin, or lacks one it pins."""


class ReleaseSchemaError(ReleaseError):
    """The metadata or the Oracle spec inside the bundle is malformed."""


class BadReleaseNumberError(ReleaseSchemaError):
    """A release number (or root version) outside 1..2**63-1 (1..2**32-1 for a root)."""


class OversizeSpecError(ReleaseSchemaError):
    """The signed Oracle spec exceeds a size limit or uses YAML aliases; the cause is the
    SpecLimitError naming the field."""


class RootSchemaError(ReleaseSchemaError):
    """A trust root is not valid TUF root metadata (e.g. a threshold of 0)."""


class RootRotationError(ReleaseError):
    """A new trust root is not signed by the threshold of both the old and the new root keys."""


class OperatorKeyError(ReleaseError):
    """An operator key (a key file, or a key listed in a trust root) is malformed, not Ed25519,
    or inconsistent."""


class KeyIdMismatchError(OperatorKeyError):
    """A key's id is not the one derived from its key material."""


class DuplicateKeyError(OperatorKeyError):
    """The same key material is listed more than once (it would count twice toward a threshold)."""


class RegressionFailedError(ReleaseError):
    """The regression suite a release carries did not pass 100 % against its own Oracle and the
    Gate's risk policy (a golden proposal no longer allowed, a recorded incident no longer
    blocked, or a case not scored). ``failures`` lists every failed case."""

    def __init__(self, message: str, failures: tuple = ()):
        super().__init__(message)
        self.failures = tuple(failures)


class RolloutError(ReleaseError):
    """A rollout request is refused: no candidate in rollout, another release's number, an
    unknown action, or a move the rollout no longer allows (it has ended)."""


class RolloutRequiredError(RolloutError):
    """A release whose rollout plan has stages before full was asked to become active at once
    (only `Governor.accept` may take it, as a candidate)."""


class StoreError(ReleaseError):
    """The robot's release store is unreadable, corrupt, or cannot be written."""


class KeyFileError(FlywheelError):
    """A node's signing key file is missing, unreadable, readable by others, or not Ed25519."""
