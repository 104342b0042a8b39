#!/usr/bin/env bash
# Re-vendor the web map's third-party assets from npm into the Python package (run from the repo root):
#   web/vendor.sh
# The map must work with no internet at run time, so the built files are committed under
# src/skytrace/web/vendor/ with their licences. Versions are pinned in web/package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(python3 -c 'import json; print(json.load(open("web/package.json"))["dependencies"]["leaflet"])')
DEST=src/skytrace/web/vendor/leaflet
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "leaflet@$VERSION" >/dev/null && tar xzf "leaflet-$VERSION.tgz")
rm -rf "$DEST"
mkdir -p "$DEST/images"
cp "$TMP/package/dist/leaflet.js" "$TMP/package/dist/leaflet.css" "$TMP/package/LICENSE" "$DEST/"
cp "$TMP/package/dist/images/"*.png "$DEST/images/"
echo "leaflet@$VERSION" > "$DEST/VERSION"
sha256sum "$DEST/leaflet.js" "$DEST/leaflet.css" > "$DEST/SHA256SUMS"
echo "vendored leaflet $VERSION into $DEST"
