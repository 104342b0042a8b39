"""Simulation: drone waves, sensor networks and their detections, written in the interchange formats."""
