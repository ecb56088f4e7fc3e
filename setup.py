"""pip-installable library and `flywheel` CLI (the ROS interfaces are built by colcon)."""
from setuptools import find_packages, setup

setup(
    name='alignment-flywheel',
    version='0.1.0',
    description='A governed, fail-closed safety layer between a planner and a robot (ROS 2).',
    license='Apache-2.0',
    package_dir={'': 'src'},
    packages=find_packages('src'),
    python_requires='>=3.10',
    install_requires=['numpy', 'shapely>=2', 'pyyaml', 'matplotlib', 'cryptography', 'tuf', 'mcap',
                      'mcap-ros2-support'],
    entry_points={'console_scripts': ['flywheel = flywheel.cli.main:main']},
)
