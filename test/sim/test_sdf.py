"""The SDF export puts exactly the embedded world's obstacles into Gazebo: parsed back with
xml.etree, every obstacle is a static model named after its id whose footprint is the polygon's
(boxes for axis-aligned rectangles, extruded polylines otherwise), at the requested height, with
the robot at the start pose."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from shapely.geometry import Polygon

from flywheel.cli.main import main
from flywheel.errors import SpecError
from flywheel.sim import sdf
from flywheel.sim.world import load_world, parse_world
from test.conftest import CONFIG

TOL = 1e-9


def numbers(element: ET.Element | None) -> list[float]:
    assert element is not None
    return [float(v) for v in element.text.split()]


def tree(element: ET.Element) -> tuple:
    """An element's tag, text and children, layout whitespace aside."""
    return (element.tag, (element.text or '').strip(), [tree(c) for c in element])


def models(root: ET.Element) -> dict[str, ET.Element]:
    world = root.find('world')
    return {m.get('name'): m for m in world.findall('model')}


def footprint(model: ET.Element) -> tuple[Polygon, float]:
    """The model's collision shape as a polygon in the world frame, and its extrusion
    (z_min, z_max) as Gazebo builds it: a box centred on its pose, a polyline from z = 0."""
    x, y, z, roll, pitch, yaw = numbers(model.find('pose'))
    assert (roll, pitch, yaw) == (0.0, 0.0, 0.0)      # obstacles are never rotated: vertices are
    geometry = model.find('link/collision/geometry')
    visual = model.find('link/visual/geometry')
    assert tree(geometry) == tree(visual), 'what is seen is what collides'
    box = geometry.find('box')
    if box is not None:
        sx, sy, sz = numbers(box.find('size'))
        shape = Polygon([(x - sx / 2, y - sy / 2), (x + sx / 2, y - sy / 2),
                         (x + sx / 2, y + sy / 2), (x - sx / 2, y + sy / 2)])
        return shape, (z - sz / 2, z + sz / 2)
    polyline = geometry.find('polyline')
    points = [numbers(p) for p in polyline.findall('point')]
    height = numbers(polyline.find('height'))[0]
    return Polygon([(x + px, y + py) for px, py in points]), (z, z + height)


def same_polygon(a: Polygon, b: Polygon) -> bool:
    return a.symmetric_difference(b).area < TOL and a.hausdorff_distance(b) < TOL


def export(world, **kwargs) -> ET.Element:
    text = sdf.world_to_sdf(world, **kwargs)
    return ET.fromstring(text)


@pytest.fixture(scope='module')
def world():
    return load_world(CONFIG / 'world.yaml')


SKEWED = {
    'frame_id': 'map', 'near_miss_distance': 0.1, 'start': [1.0, 2.0, 0.7],
    'footprint': [[-0.3, -0.2], [0.4, 0.0], [-0.3, 0.2]],
    'obstacles': [
        {'id': 'box', 'polygon': [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]},
        {'id': 'rotated_crate', 'polygon': [[5.0, 5.0], [6.0, 6.0], [5.0, 7.0], [4.0, 6.0]]},
        {'id': 'l_shaped_rack', 'polygon': [[8, 0], [10, 0], [10, 1], [9, 1], [9, 3], [8, 3]]},
        {'id': 'triangle', 'polygon': [[3.0, 3.0], [4.5, 3.2], [3.4, 4.1]]},
    ]}


def test_every_obstacle_of_the_world_is_a_static_model_with_its_exact_footprint(world):
    root = export(world, height=1.5)
    assert root.tag == 'sdf' and root.get('version') == sdf.SDF_VERSION
    found = models(root)
    for ident, polygon in world.obstacles:
        model = found[ident]
        assert model.find('static').text == 'true'
        shape, (z0, z1) = footprint(model)
        assert same_polygon(shape, polygon), ident
        assert (z0, z1) == pytest.approx((0.0, 1.5), abs=TOL)
    # nothing else but the ground and the robot
    assert set(found) == {i for i, _ in world.obstacles} | {sdf.GROUND, sdf.ROBOT}


def test_the_default_world_is_all_boxes(world):
    found = models(export(world))
    assert all(found[i].find('link/collision/geometry/box') is not None
               for i, _ in world.obstacles)


def test_polygons_that_are_not_axis_aligned_rectangles_are_extruded_polylines():
    skewed = parse_world(SKEWED)
    found = models(export(skewed, height=0.8))
    assert found['box'].find('link/collision/geometry/box') is not None
    for ident, polygon in skewed.obstacles:
        shape, (z0, z1) = footprint(found[ident])
        assert same_polygon(shape, polygon), ident
        assert (z0, z1) == pytest.approx((0.0, 0.8), abs=TOL)
    for ident in ('rotated_crate', 'l_shaped_rack', 'triangle'):
        polyline = found[ident].find('link/collision/geometry/polyline')
        assert polyline is not None, ident
        # the vertices in order, not closed again (Gazebo closes the outline itself)
        expected = [v for p in dict(skewed.obstacles)[ident].exterior.coords[:-1] for v in p]
        written = [v for p in polyline.findall('point') for v in numbers(p)]
        assert written == pytest.approx(expected, abs=TOL)


def test_the_robot_starts_where_the_sim_starts_with_its_footprint():
    skewed = parse_world(SKEWED)
    robot = models(export(skewed))[sdf.ROBOT]
    assert robot.find('static') is None or robot.find('static').text == 'false'
    x, y, z, roll, pitch, yaw = numbers(robot.find('pose'))
    assert (x, y, yaw) == pytest.approx(tuple(skewed.start)) and (z, roll, pitch) == (0, 0, 0)
    link = robot.find('link')
    assert link.find('pose') is None, 'the link is the robot origin odometry reports'
    polyline = link.find('collision/geometry/polyline')
    body = Polygon([numbers(p) for p in polyline.findall('point')])
    assert same_polygon(body, skewed.footprint)
    assert numbers(link.find('inertial/mass'))[0] > 0


def test_the_robot_is_driven_and_reported_in_the_world_frame(world):
    robot = models(export(world))[sdf.ROBOT]
    plugins = {p.get('name'): p for p in robot.findall('plugin')}
    control = plugins['gz::sim::systems::VelocityControl']
    assert control.get('filename') == 'gz-sim-velocity-control-system'
    assert control.find('topic').text == sdf.ROBOT_CMD_VEL
    odometry = plugins['gz::sim::systems::OdometryPublisher']
    assert odometry.get('filename') == 'gz-sim-odometry-publisher-system'
    # the Gate anchors proposals to odometry in the world frame (map), not in {model}/odom
    assert odometry.find('odom_frame').text == world.frame_id
    assert odometry.find('odom_topic').text == sdf.ROBOT_ODOMETRY
    # an axis-aligned footprint is a box, offset so that it covers the footprint exactly
    x, y, z, *_ = numbers(robot.find('pose'))
    gx, gy, gz, *_ = numbers(robot.find('link/collision/pose'))
    sx, sy, _ = numbers(robot.find('link/collision/geometry/box/size'))
    body = Polygon([(gx - sx / 2, gy - sy / 2), (gx + sx / 2, gy - sy / 2),
                    (gx + sx / 2, gy + sy / 2), (gx - sx / 2, gy + sy / 2)])
    assert same_polygon(body, world.footprint)


def test_the_world_has_ground_and_the_systems_gazebo_needs(world):
    root = export(world)
    w = root.find('world')
    plugins = {p.get('name') for p in w.findall('plugin')}
    assert {'gz::sim::systems::Physics', 'gz::sim::systems::SceneBroadcaster',
            'gz::sim::systems::UserCommands'} <= plugins
    ground = models(root)[sdf.GROUND]
    assert ground.find('static').text == 'true'
    assert numbers(ground.find('link/collision/geometry/plane/normal')) == [0, 0, 1]


@pytest.mark.parametrize('height', [0.0, -1.0, math.inf, math.nan])
def test_a_height_that_is_not_positive_is_refused(world, height):
    with pytest.raises(SpecError, match='height'):
        sdf.world_to_sdf(world, height=height)


@pytest.mark.parametrize('ident', [sdf.GROUND, sdf.ROBOT, 'rack::1', '__model__'])
def test_an_id_that_cannot_name_a_model_is_refused(ident):
    doc = dict(SKEWED, obstacles=[{'id': ident, 'polygon': [[0, 0], [1, 0], [1, 1]]}])
    with pytest.raises(SpecError, match='obstacles'):
        sdf.world_to_sdf(parse_world(doc))


def test_cli_writes_the_world_file(tmp_path, world, capsys):
    out = tmp_path / 'warehouse.sdf'
    assert main(['world', 'export', '--sdf', '--world', str(CONFIG / 'world.yaml'),
                 '--out', str(out), '--height', '2.0']) == 0
    root = ET.parse(out).getroot()
    shape, (_, top) = footprint(models(root)['shelf_a'])
    assert same_polygon(shape, dict(world.obstacles)['shelf_a']) and top == pytest.approx(2.0)
    assert not list(tmp_path.glob('*.tmp'))


def test_cli_writes_to_standard_output_by_default(capsys):
    assert main(['world', 'export', '--sdf']) == 0
    assert 'shelf_a' in {m.get('name') for m in ET.fromstring(capsys.readouterr().out)
                         .find('world').findall('model')}


def test_cli_a_malformed_world_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / 'world.yaml'
    bad.write_text('frame_id: map\n')
    assert main(['world', 'export', '--sdf', '--world', str(bad)]) == 2
    assert 'world' in capsys.readouterr().err


def test_cli_needs_a_format(capsys):
    assert main(['world', 'export']) == 2
