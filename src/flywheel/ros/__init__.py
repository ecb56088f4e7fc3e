"""Thin rclpy adapters: parameters, QoS, message <-> core conversion. No policy lives here."""
