"""Following governance's release directives from the node side (the verifier; the same rules the
Oracle node applies to its own directives).

Invariants:
- A directive counts only if signed by a governance key of the newest trust root this follower
  trusts (with authentication on), is newer than the last one applied ((epoch, seq)), and does
  not go to a lower release number unless it is a rollback (flywheel/oracle/directive.py).
- Every release it carries is verified again here (flywheel/release/bundle.py: signatures,
  expiry on the wall clock passed in, hashes, spec) before anything of it is used.
- A root carried by a directive is taken only as a valid rotation of the newest one trusted (old
  and new thresholds); an older one (a rollback past a rotation) only if it is byte for byte a
  root trusted before. Anything else is a ReleaseError and changes nothing.
Nothing here does I/O or reads a clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flywheel.auth import GOVERNANCE, Keyring
from flywheel.errors import ReleaseError
from flywheel.oracle.directive import Directive, directive_problem
from flywheel.release.bundle import VerifiedRelease, verify_bundle
from flywheel.release.root import check_self_signed, load_root, verify_rotation


@dataclass(frozen=True)
class Followed:
    """A directive applied: the active release and the candidate beside it (None if none)."""

    directive: Directive
    release: VerifiedRelease
    candidate: VerifiedRelease | None


class ReleaseFollower:
    def __init__(self, root_bytes: bytes, now: datetime, authenticate: bool = True):
        """``root_bytes``: the trust root this follower starts from (checked: self-signed, not
        expired); ReleaseError if it is not one."""
        root = load_root(root_bytes)
        check_self_signed(root, now)
        self.root = root
        self.authenticate = authenticate
        self.applied: tuple[int, int] | None = None
        self.number = 0                              # the active release applied (0: none)
        self._roots: dict[int, bytes] = {root.signed.version: root_bytes}

    def follow(self, d: Directive, now: datetime) -> Followed:
        """Verify ``d`` and everything it carries, then apply it; ReleaseError (nothing
        changed) if any of it does not hold."""
        problem = directive_problem(d, self.applied, self.number)
        if problem is not None:
            raise ReleaseError(problem)
        root = release_root = self.root
        new_roots: dict[int, bytes] = {}
        if d.root:
            carried = load_root(d.root)
            version = carried.signed.version
            if version > root.signed.version:
                verify_rotation(root, carried, now)
                root = release_root = carried
                new_roots[version] = d.root
            elif self._roots.get(version) == d.root:
                release_root = carried
            else:
                raise ReleaseError(f'directive carries trust root v{version}, which was never '
                                   'trusted here')
        if self.authenticate:
            problem = Keyring.from_root(root).check(GOVERNANCE, d.key_id, d.signature,
                                                    d.canonical_bytes())
            if problem is not None:
                raise ReleaseError(f'directive: {problem}')
        release = _verified(d.bundle, release_root, now, d.number, d.oracle_version)
        candidate = None
        if d.candidate_number:
            candidate_root = root
            if d.candidate_root and d.candidate_root != d.root:
                carried = load_root(d.candidate_root)
                version = carried.signed.version
                if version > root.signed.version:
                    verify_rotation(root, carried, now)
                    root = candidate_root = carried
                    new_roots[version] = d.candidate_root
                elif self._roots.get(version) == d.candidate_root:
                    candidate_root = carried
                else:
                    raise ReleaseError('candidate carries a trust root never trusted here')
            candidate = _verified(d.candidate_bundle, candidate_root, now, d.candidate_number,
                                  d.candidate_version)
        self.root = root
        self._roots.update(new_roots)
        self.applied = (d.epoch, d.seq)
        self.number = d.number
        return Followed(d, release, candidate)


def _verified(bundle: bytes, root, now: datetime, number: int, version: str) -> VerifiedRelease:
    release = verify_bundle(bundle, root, now, installed_number=0, allow_same=True)
    if release.number != number or release.oracle_version != version:
        raise ReleaseError(f'directive names release {number} ({version}), the bundle is '
                           f'{release.number} ({release.oracle_version})')
    return release
