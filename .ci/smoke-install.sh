#!/usr/bin/env bash
# A plain `pip install .` (no extras) in a clean virtual environment must give a working CLI:
# `skytrace --help`, then a tiny simulate -> track -> alerts chain. Prints the time `skytrace --help` takes.
#   usage: .ci/smoke-install.sh [PYTHON]
set -euo pipefail
PY="${1:-python3.11}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/skytrace-smoke.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$PY" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --upgrade pip
"$work/venv/bin/pip" install --quiet "$repo"
cd "$work"
bin="$work/venv/bin"
TIMEFORMAT=%R
{ time "$bin/skytrace" --help > help.txt; } 2> help-time.txt
grep -q "simulate" help.txt
echo "== smoke: skytrace --help in $(cat help-time.txt) s wall (clean venv, no extras)"
cat > mini.toml <<'TOML'
name = "smoke"
start_utc = "2026-11-22T21:00:00Z"
duration_s = 10800
region = ["UA-KV", "UA-KC"]
[[wave]]
launch_area = "navlya"
count = 3
launch_interval_s = 60
targets = ["kyiv"]
kind_mix = { shahed = 1.0 }
waypoints = [1, 1]
[acoustic]
count = 120
city_fraction = 0.8
corridor_fraction = 0.2
city_weights = { kyiv = 1.0 }
TOML
"$bin/skytrace" simulate mini.toml --out run --seed 1 --quiet
"$bin/skytrace" track --sensors run/sensors.json --detections run/detections.jsonl --out run/tracks.jsonl
"$bin/skytrace" alerts --tracks run/tracks.jsonl --out run/alerts
"$bin/skytrace" config show > /dev/null
test -s run/tracks.jsonl
echo "== smoke: plain install works (simulate -> track -> alerts)"
