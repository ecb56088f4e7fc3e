"""alignment_flywheel: a governed, fail-closed safety layer between a planner and a robot.

The core of every role (proposer, oracle, enforcement, sim) is plain Python with plain data in and
out; rclpy appears only in `flywheel.ros`.
"""
