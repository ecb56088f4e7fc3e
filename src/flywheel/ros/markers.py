"""Shapes (flywheel/viz.py) as visualization_msgs/Marker line strips and text labels."""
from __future__ import annotations

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from flywheel.viz import Shape


def shapes_to_markers(shapes: list[Shape], frame_id: str, stamp, lifetime_s: float = 0.0,
                      labels: bool = True) -> MarkerArray:
    markers = []
    for shape in shapes:
        m = Marker(ns=shape.namespace, id=shape.ident, type=Marker.LINE_STRIP,
                   action=Marker.ADD)
        m.header.frame_id, m.header.stamp = frame_id, stamp
        m.scale.x = 0.03 if shape.closed else 0.02
        m.color = ColorRGBA(r=shape.color[0], g=shape.color[1], b=shape.color[2],
                            a=shape.color[3])
        ring = list(shape.points) + ([shape.points[0]] if shape.closed and shape.points else [])
        m.points = [Point(x=x, y=y, z=0.0) for x, y in ring]
        m.pose.orientation.w = 1.0
        m.lifetime = Duration(sec=int(lifetime_s), nanosec=int(lifetime_s % 1 * 1e9))
        markers.append(m)
        if labels and shape.label and shape.points:
            t = Marker(ns=shape.namespace + '/labels', id=shape.ident,
                       type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, text=shape.label)
            t.header = m.header
            t.pose.position.x = sum(p[0] for p in shape.points) / len(shape.points)
            t.pose.position.y = sum(p[1] for p in shape.points) / len(shape.points)
            t.pose.position.z, t.pose.orientation.w = 0.3, 1.0
            t.scale.z, t.color, t.lifetime = 0.2, m.color, m.lifetime
            markers.append(t)
    return MarkerArray(markers=markers)
