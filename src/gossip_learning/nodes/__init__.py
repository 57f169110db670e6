"""ROS 2 executables (robot, mobility driver, monitor, many-robot swarm) wiring the agent to rclpy.

Importing this package does not import rclpy; each node module does.
"""
