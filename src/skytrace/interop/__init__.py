"""Interoperability: the formats air-defence, air-traffic and first-responder tools already speak.

In: ASTERIX CAT048/CAT015 (radar plots), ADS-B (SBS BaseStation, readsb/dump1090 ``aircraft.json``), Remote ID
(ASTM F3411 / ASD-STAN EN 4709-002). Out: Cursor on Target to TAK, ASTERIX CAT062 system tracks, GeoJSON and KML,
a signed webhook, an Atom index of the CAP feed. See docs/interop.md.

Third-party libraries (libasterix, pytak) are imported lazily: a plain ``pip install skytrace`` works without them
and says ``pip install 'skytrace[interop]'`` when a format needs one.
"""

from __future__ import annotations

import importlib
import warnings
from datetime import UTC, datetime
from types import ModuleType

from skytrace.errors import SkytraceError


def require(module: str, extra: str = "interop") -> ModuleType:
    """Import an optional dependency or raise a clear error naming the extra that provides it."""
    try:
        with warnings.catch_warnings():  # pytak warns at import about optional extras skytrace does not use
            warnings.simplefilter("ignore", UserWarning)
            return importlib.import_module(module)
    except ImportError as exc:
        raise SkytraceError(f"this needs the optional package providing `{module}`: "
                            f"pip install 'skytrace[{extra}]'") from exc


def utc_ms(t: float) -> tuple[datetime, int]:
    """UNIX time -> (UTC datetime of the whole second, milliseconds), rounded to the nearest millisecond."""
    ms = round(t * 1000.0)
    return datetime.fromtimestamp(ms // 1000, tz=UTC), ms % 1000
