"""skytrace: an open early-warning system against one-way attack drones.

Sense (acoustic nodes, radars, sightings) -> track (multi-sensor multi-target) -> warn (zone alerts, CAP)
-> document (forensics). Strictly defensive and civil.
"""

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: ``import skytrace`` stays cheap (the CLI starts in well under a second)
    if name in ("Night", "Tracks", "Track"):
        from skytrace import night

        return getattr(night, name)
    raise AttributeError(f"module 'skytrace' has no attribute {name!r}")
