"""skytrace: an open early-warning system against one-way attack drones.

Sense (acoustic nodes, radars, sightings) -> track (multi-sensor multi-target) -> warn (zone alerts, CAP)
-> document (forensics). Strictly defensive and civil.
"""

__version__ = "0.1.0"
