"""Forensics: document downed drones for investigators.

- :mod:`~skytrace.forensics.inputs` — debris.jsonl and launch-area catalogues (validated at the edge);
- :mod:`~skytrace.forensics.link` — which tracks ended where a debris item was recovered, with probabilities;
- :mod:`~skytrace.forensics.origin` — back-projection of a linked track to the launch areas (Monte Carlo);
- :mod:`~skytrace.forensics.custody` — hash-chained, Ed25519-signed custody log and content-addressed media;
- :mod:`~skytrace.forensics.registry` — incidents, debris items, components and media in the store;
- :mod:`~skytrace.forensics.attribution` — component markings scored against a user-maintained catalogue;
- :mod:`~skytrace.forensics.sanctions` — screening of manufacturers against FollowTheMoney data the user loads;
- :mod:`~skytrace.forensics.report` — the investigator's report (HTML, PDF).

Strictly documentary: nothing here steers, aims or fires anything.
"""
