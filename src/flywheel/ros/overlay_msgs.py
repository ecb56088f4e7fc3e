"""CoverageOverlay <-> msg/CoverageOverlay. Pure translation; check_overlay judges the result."""
from __future__ import annotations

from alignment_flywheel.msg import CoverageOverlay as OverlayMsg
from flywheel.release.overlay import MAX_REGIONS, CoverageOverlay
from flywheel.ros.convert import to_time


def overlay_to_msg(o: CoverageOverlay, stamp_ns: int) -> OverlayMsg:
    msg = OverlayMsg(epoch=o.epoch, seq=o.seq, number=o.number, overlay_version=o.version,
                     oracle_version=o.oracle_version, release_number=o.release_number,
                     coverage=o.coverage, key_id=o.key_id, signature=list(o.signature))
    msg.regions = [float(v) for region in o.regions for v in region]
    msg.header.stamp = to_time(stamp_ns)
    return msg


def overlay_from_msg(msg: OverlayMsg) -> CoverageOverlay:
    """A regions array not made of whole regions keeps its whole ones only; the signature
    (over what governance sent) then fails."""
    flat = [float(v) for v in msg.regions[:4 * MAX_REGIONS]]
    regions = tuple(tuple(flat[i:i + 4]) for i in range(0, len(flat) - len(flat) % 4, 4))
    return CoverageOverlay(msg.number, msg.oracle_version, msg.release_number, msg.coverage,
                           regions, msg.epoch, msg.seq, msg.key_id, bytes(msg.signature))
