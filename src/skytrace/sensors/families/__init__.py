"""The built-in sensor families, one module each; registered in :mod:`skytrace.sensors.registry`."""
