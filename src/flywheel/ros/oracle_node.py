"""oracle_node: proposals in, SafetySignals out, scored with the active Oracle release.

Proposals are read from their bytes with every bound checked first. Under overload a proposal
that already waited longer than ``shed_age`` is answered at once, unscored, with status SHED: the
Gate decides it OVERLOAD instead of timing it out, and the queue drains.

Every verdict is signed with the Oracle's key (authenticate, the default): the Gate counts no
other.

Following governance it runs governance's releases and nothing else: until the first arrives it
scores nothing (the Gate times proposals out: the robot stays stopped), because the base spec may
be exactly the unpatched one a release replaced. A directive counts only if signed by a governance
key; every release is verified again here on one worker thread, newest directive only, against
the wall clock; the executor swaps the reference between two evaluations, so each evaluation runs
entirely under one release.

Following governance it also applies governance's coverage overlay (regions the verifier verified
safe; flywheel/release/overlay.py says why): only one signed by a governance key, numbered above
the one applied, and only to the release it was made for (the active release's coverage grid and
the candidate's); a verdict names it in overlay_version. Nothing else of a release changes.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from visualization_msgs.msg import Marker, MarkerArray

from alignment_flywheel.msg import CoverageOverlay as CoverageOverlayMsg
from alignment_flywheel.msg import OracleRelease, OracleRunning
from alignment_flywheel.msg import Proposal as ProposalMsg
from alignment_flywheel.msg import SafetySignals as SignalsMsg
from flywheel.auth import GOVERNANCE, Keyring, MessageKey, load_message_key
from flywheel.errors import FlywheelError, ReleaseError
from flywheel.files import read_file
from flywheel.health import Health, LatencyWindow, Level, RateCounter, counts_text
from flywheel.oracle.config import OracleConfig
from flywheel.oracle.directive import Directive, directive_problem, running_bytes
from flywheel.oracle.oracle import Checked, Oracle
from flywheel.oracle.spec import load_spec
from flywheel.proposal import ProposalLimits
from flywheel.provision import NODE_KEYS, ROOT, key_path
from flywheel.release.bundle import verify_bundle
from flywheel.release.overlay import CoverageOverlay, apply_overlay, check_overlay
from flywheel.release.root import check_self_signed, load_root, verify_rotation
from flywheel.ros import diagnostics, qos, topics
from flywheel.ros.markers import shapes_to_markers
from flywheel.ros.overlay_msgs import overlay_from_msg
from flywheel.ros.params import config_path, declare_config
from flywheel.ros.run import autostart, run_node, wall_now
from flywheel.signals_wire import encode_signals
from flywheel.viz import zone_shapes
from flywheel.wire import WireError, decode_proposal


class OracleNode(LifecycleNode):
    """A lifecycle node: it scores only while active (inactive, it answers nothing and the Gate
    times proposals out), keys, root and spec are loaded on configure (a failure is FAILURE)."""

    def __init__(self, **kwargs):
        super().__init__('oracle', **kwargs)
        self.config = declare_config(self, OracleConfig)
        self.active = False
        self.epoch, self.seq = time.time_ns(), 0
        self.counts: Counter[str] = Counter()
        self.last_refusal = ''
        self._latency = LatencyWindow()
        self._rate = RateCounter()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, diagnostics.TOPIC, 10)
        self.create_timer(1.0, self.on_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.publisher = self.create_publisher(SignalsMsg, topics.SAFETY_SIGNALS, qos.STREAM)
        self.create_subscription(ProposalMsg, topics.PROPOSALS, self.on_proposal, qos.INPUT,
                                 raw=True)
        self.root = None
        self.oracle: Oracle | None = None
        self.candidate: Oracle | None = None       # a release on trial, scored beside
        self.number = 0                     # the running release's number (0: the base spec)
        self.candidate_number = 0
        self.report_seq = 0
        self.key: MessageKey | None = None
        self._lock = threading.Lock()
        self._pending: Directive | None = None
        self._ready: tuple | None = None
        self._applied: tuple[int, int] | None = None
        self._wake = threading.Event()
        self._roots: dict[int, bytes] = {}
        self.markers_pub = self.create_publisher(MarkerArray, topics.ORACLE_MARKERS, qos.STATUS)
        self._base: tuple[Oracle | None, Oracle | None] = (None, None)   # releases as signed
        self._overlay: CoverageOverlay | None = None        # the newest accepted overlay
        self._overlay_msg: CoverageOverlayMsg | None = None  # one heard before configure
        if self.config.follow_governance:
            self.create_subscription(CoverageOverlayMsg, topics.ORACLE_OVERLAY,
                                     self.on_overlay, qos.STATUS)
            self.running_pub = self.create_publisher(OracleRunning, topics.ORACLE_RUNNING,
                                                     qos.STATUS)
            self.create_subscription(OracleRelease, topics.ORACLE_RELEASE, self.on_release,
                                     qos.STATUS)
            threading.Thread(target=self._verify_loop, daemon=True, name='release-verify').start()
            self.create_timer(0.05, self._swap_if_ready)

    # -- lifecycle ------------------------------------------------------------------------------

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        config = self.config
        try:
            key = (load_message_key(key_path(config.signing_key_path, NODE_KEYS['oracle']))
                   if config.authenticate else None)
            if config.follow_governance:
                root_bytes = read_file(key_path(config.trust_root_path, ROOT), 'trust root')
                root = load_root(root_bytes)
                check_self_signed(root, wall_now())
                oracle = None
            else:
                oracle = self._build(load_spec(config_path(config.spec_path)))
        except FlywheelError as exc:
            self.problem = str(exc)
            self.get_logger().error(f'cannot configure: {exc}')
            return TransitionCallbackReturn.FAILURE
        if key is None:
            self.get_logger().warning('AUTHENTICATION OFF (authenticate: false): verdicts go out '
                                      'unsigned; only for tests and the demo\'s bypass run')
        self.key = key
        if config.follow_governance:
            with self._lock:
                self.root = root
                # Every root this Oracle has trusted, by version, as received (for a rollback
                # past a rotation, whose release the older root verified).
                self._roots = {root.signed.version: root_bytes}
            self.get_logger().info('oracle configured, waiting for governance\'s release (trust '
                                   f'root v{root.signed.version}); scoring nothing until then')
            self._wake.set()           # a release that arrived before configure is verified now
            self._take_overlay()
        else:
            self.oracle = oracle
            self._publish_zones(oracle)
            self.get_logger().info(f'oracle {oracle.spec.version} configured (no governance): '
                                   + self._describe(oracle))
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.active = True
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        with self._lock:
            self.oracle = self.root = self.key = None
            self._ready = self._applied = None
            self.number = 0
            self._base, self._overlay = (None, None), None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        return TransitionCallbackReturn.SUCCESS

    def _build(self, spec) -> Oracle:
        return Oracle(spec, ProposalLimits(spec.frame_id, self.config.max_points,
                                           self.config.allowed_proposers,
                                           min_horizon=spec.command_hold))

    def _publish_zones(self, oracle: Oracle) -> None:
        """The spec in force, for RViz: sent when it changes (transient local), never per
        proposal. A deleteall first, so zones a patch removed disappear too."""
        clear = Marker(action=Marker.DELETEALL)
        shapes = shapes_to_markers(zone_shapes(oracle.spec), oracle.spec.frame_id,
                                   self.get_clock().now().to_msg())
        self.markers_pub.publish(MarkerArray(markers=[clear, *shapes.markers]))

    @staticmethod
    def _describe(oracle: Oracle) -> str:
        spec = oracle.spec
        return (f'{len(spec.obstacles)} obstacles, {len(spec.keep_out)} keep-out, '
                f'{len(spec.speed_zones)} speed zones, command hold {spec.command_hold}s')

    # -- releases -------------------------------------------------------------------------------

    def on_release(self, msg: OracleRelease) -> None:
        directive = Directive(msg.epoch, msg.seq, msg.number, msg.oracle_version, msg.rollback,
                              bytes(msg.bundle), bytes(msg.root), msg.candidate_version,
                              msg.candidate_number, bytes(msg.candidate_bundle),
                              bytes(msg.candidate_root), msg.key_id, bytes(msg.signature))
        with self._lock:
            self._pending = directive      # only the newest waits; an older one is dropped
        self._wake.set()

    def _verify_loop(self) -> None:
        """One directive at a time, off the executor thread."""
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                if self.root is None:        # not configured yet: keep it for configure
                    continue
                directive, self._pending = self._pending, None
                applied, running = self._applied, self.number
            if directive is None:
                continue
            problem = directive_problem(directive, applied, running)
            if problem is None:
                try:
                    oracle, candidate, root = self._verify(directive)
                except ReleaseError as exc:
                    problem = f'{type(exc).__name__}: {exc}'
            if problem is not None:
                self.last_refusal = (f'release {directive.number} ({directive.oracle_version}) '
                                     f'refused: {problem}')[:512]
                self.counts['releases_refused'] += 1
                self.get_logger().error(f'{self.last_refusal}; keeping '
                                        f'{self.oracle.spec.version if self.oracle else "nothing"}')
                continue
            with self._lock:
                self._ready = (oracle, candidate, root, directive)
                self._applied = (directive.epoch, directive.seq)
                self.number = directive.number

    def _verify(self, d: Directive) -> tuple[Oracle, Oracle | None, object]:
        """Defence in depth: the same checks as governance. The directive carries the root that
        verified its release: a newer one is taken only as a valid rotation of ours; an older one
        (a rollback past a rotation) only if it is byte for byte a root we trusted before. The
        directive itself must be signed by a governance key of our newest root."""
        now = wall_now()
        root = release_root = self.root
        if d.root:
            carried = load_root(d.root)
            version = carried.signed.version
            if version > root.signed.version:
                verify_rotation(root, carried, now)
                root = release_root = carried
            elif self._roots.get(version) == d.root:
                release_root = carried
            elif version != root.signed.version:
                raise ReleaseError(f'directive carries trust root v{version}, which this Oracle '
                                   'never trusted')
        if self.config.authenticate:
            problem = Keyring.from_root(root).check(GOVERNANCE, d.key_id, d.signature,
                                                    d.canonical_bytes())
            if problem is not None:
                raise ReleaseError(f'directive: {problem}')
        release = self._check(d.bundle, release_root, now, d.number, d.oracle_version)
        candidate = None
        if d.candidate_number:
            candidate_root = root
            if d.candidate_root and d.candidate_root != d.root:
                carried = load_root(d.candidate_root)
                if carried.signed.version > root.signed.version:
                    verify_rotation(root, carried, now)
                    root = candidate_root = carried
                elif self._roots.get(carried.signed.version) != d.candidate_root:
                    raise ReleaseError('candidate carries a trust root this Oracle never '
                                       'trusted')
            candidate = self._build(self._check(d.candidate_bundle, candidate_root, now,
                                                d.candidate_number, d.candidate_version).spec)
        if root is not self.root:
            self._roots[root.signed.version] = root_bytes_of(d, root)
        return self._build(release.spec), candidate, root

    @staticmethod
    def _check(bundle: bytes, root, now, number: int, version: str):
        release = verify_bundle(bundle, root, now, installed_number=0, allow_same=True)
        if release.number != number or release.oracle_version != version:
            raise ReleaseError(f'directive names release {number} ({version}), the bundle is '
                               f'{release.number} ({release.oracle_version})')
        return release

    def _swap_if_ready(self) -> None:
        if self._ready is None:
            return
        with self._lock:
            (oracle, candidate, root, directive), self._ready = self._ready, None
        old = self.oracle.spec.version if self.oracle else 'nothing'
        self.oracle, self.candidate, self.root = oracle, candidate, root
        self.candidate_number = directive.candidate_number
        self._base = (oracle, candidate)
        self._apply_overlay()
        self._publish_zones(oracle)
        self._report_running()
        self.get_logger().info(f'running Oracle {oracle.spec.version} (release '
                               f'{directive.number}{", rollback" if directive.rollback else ""}'
                               f', was {old})'
                               + (f' with candidate {candidate.spec.version} (release '
                                  f'{directive.candidate_number}) beside it' if candidate else '')
                               + f': {self._describe(oracle)}')

    def on_overlay(self, msg: CoverageOverlayMsg) -> None:
        self._overlay_msg = msg
        self._take_overlay()

    def _take_overlay(self) -> None:
        """Accept the overlay heard last if it may be applied (kept until configured)."""
        msg = self._overlay_msg
        if msg is None or self.root is None:
            return
        self._overlay_msg = None
        overlay = overlay_from_msg(msg)
        problem = check_overlay(overlay, Keyring.from_root(self.root)
                                if self.config.authenticate else None,
                                self._overlay.number if self._overlay else 0)
        if problem is not None:
            self.counts['overlays_refused'] += 1
            self.last_refusal = f'coverage overlay {overlay.number} refused: {problem}'[:512]
            self.get_logger().error(self.last_refusal, throttle_duration_sec=5.0)
            return
        self._overlay = overlay
        self._apply_overlay()

    def _apply_overlay(self) -> None:
        """Run the releases as signed, with the accepted overlay's coverage if it was made for
        the active release running."""
        active, candidate = self._base
        overlay = self._overlay
        if active is None:
            return
        if (overlay is None or overlay.release_number != self.number
                or overlay.oracle_version != active.spec.version):
            self.oracle, self.candidate = active, candidate
            return
        self.oracle, self.candidate = (
            None if o is None else o.with_coverage(apply_overlay(o.spec.coverage, overlay),
                                                   overlay.version)
            for o in (active, candidate))
        self.get_logger().info(f'coverage overlay {overlay.number} applied to '
                               f'{active.spec.version} ({len(overlay.regions)} verified regions)')

    def _report_running(self) -> None:
        """What runs, signed: governance believes a swap only from this."""
        self.report_seq += 1
        report = OracleRunning(epoch=self.epoch, seq=self.report_seq,
                               active_version=self.oracle.spec.version, active_number=self.number,
                               candidate_version=(self.candidate.spec.version
                                                  if self.candidate else ''),
                               candidate_number=self.candidate_number if self.candidate else 0)
        report.header.stamp = self.get_clock().now().to_msg()
        if self.key is not None:
            report.key_id = self.key.key_id
            report.signature = list(self.key.sign(running_bytes(
                report.epoch, report.seq, report.active_version, report.active_number,
                report.candidate_version, report.candidate_number)))
        self.running_pub.publish(report)

    # -- scoring --------------------------------------------------------------------------------

    def on_proposal(self, raw: bytes) -> None:
        if not self.active:
            return
        if self.root is not None:
            self._swap_if_ready()
        # one release per evaluation, even if a swap lands meanwhile
        oracle, candidate = self.oracle, self.candidate
        if oracle is None:
            return
        started = time.perf_counter_ns()
        try:
            proposal = decode_proposal(raw, self.config.max_points)
        except WireError as exc:   # unscorable: the Gate decides it from the same bytes
            self.counts['unreadable'] += 1
            self.get_logger().warning(f'unreadable proposal {exc.proposal_id!r}: {exc}',
                                      throttle_duration_sec=1.0)
            return
        shed = (self.get_clock().now().nanoseconds - proposal.stamp_ns
                > self.config.shed_age * 1e9)
        if shed:
            self.counts['shed'] += 1
            self.get_logger().warning('overloaded: answering late proposals unscored (SHED)',
                                      throttle_duration_sec=1.0)
        # the active release's first; the candidate reuses its check and sweep where they fit
        checked = self._answer(oracle, proposal, shed, started)
        if candidate is not None:
            self._answer(candidate, proposal, shed, time.perf_counter_ns(), checked)

    def _answer(self, oracle: Oracle, proposal, shed: bool, started: int,
                checked: Checked | None = None) -> Checked | None:
        """Score (or shed), number, stamp, sign and publish one verdict; return the check and
        sweep it was scored on. A verdict scored on another release's reports the evaluation
        time it would have taken alone (the rollout's latency analysis judges that)."""
        shared_ns = 0
        if shed:
            signals = oracle.shed(proposal)
        else:
            try:
                if checked is not None and checked.fits(oracle, proposal):
                    shared_ns = checked.cost_ns
                else:
                    checked = oracle.check(proposal)
                    checked = replace(checked, cost_ns=time.perf_counter_ns() - started)
                signals = oracle.evaluate(proposal, checked)
            except Exception as exc:  # noqa: BLE001 - a scoring bug must stop the robot
                self.get_logger().error(f'scoring {proposal.proposal_id} with '
                                        f'{oracle.spec.version} failed: {exc!r}')
                signals, checked = oracle.rejected(proposal, ['internal:scoring_error']), None
        self.seq += 1
        key = self.key
        signals = replace(signals, stamp_ns=self.get_clock().now().nanoseconds, epoch=self.epoch,
                          seq=self.seq, key_id=key.key_id if key is not None else '')
        # the signature covers canonical_bytes(), which leaves out the key id, the signature and
        # the evaluation time: all three are set after it
        signals = replace(signals,
                          signature=key.sign(signals.canonical_bytes()) if key is not None else b'',
                          evaluation_ns=time.perf_counter_ns() - started + shared_ns)
        try:
            raw = encode_signals(signals, proposal.frame_id)
        except ValueError as exc:   # a spec string over the message's bound: no verdict (stop)
            self.counts['unencodable'] += 1
            self.get_logger().error(f'verdict on {proposal.proposal_id} not sent: {exc}',
                                    throttle_duration_sec=1.0)
            return checked
        self.publisher.publish(raw)
        self._rate.add()
        self._latency.add(signals.evaluation_ns * 1e-9)
        return checked

    def on_diagnostics(self) -> None:
        """What runs, how fast, what was shed or refused."""
        running = self.oracle.spec.version if self.oracle else ''
        level, message = Level.OK, f'scoring with {running}'
        if not self.active:
            level, message = Level.WARN, 'inactive: scoring nothing'
        if self.key is None:
            level, message = Level.WARN, 'AUTHENTICATION OFF: verdicts go out unsigned'
        if self.counts['shed']:
            level, message = Level.WARN, 'overloaded: late proposals shed unscored'
        if not running:
            level, message = Level.ERROR, 'no release from governance yet: scoring nothing'
        values = (('oracle_version', running), ('release_number', str(self.number)),
                  ('verdicts_per_s', f'{self._rate.rate(time.monotonic_ns()):.1f}'),
                  ('evaluation', self._latency.summary()),
                  ('last_release_refusal', self.last_refusal),
                  ('authenticated', str(self.key is not None)),
                  ('epoch', str(self.epoch)), ('verdicts', str(self.seq)),
                  ('overlay_version', self._overlay.version if self._overlay else ''),
                  ) + counts_text(self.counts, ('shed', 'unreadable', 'unencodable',
                                                'releases_refused', 'overlays_refused'))
        self.diagnostics_pub.publish(diagnostics.health_to_msg([Health(
            'alignment_flywheel: oracle', self.get_fully_qualified_name(), level, message,
            values)], self.get_clock().now().nanoseconds))


def root_bytes_of(d: Directive, root) -> bytes:
    """The bytes of a root a directive carried (the active release's or the candidate's)."""
    for data in (d.root, d.candidate_root):
        if data and load_root(data).signed.version == root.signed.version:
            return data
    return root.to_bytes()


def build() -> OracleNode:
    return autostart(OracleNode())


def main(argv=None) -> int:
    return run_node('oracle', build, argv)


if __name__ == '__main__':
    raise SystemExit(main())
