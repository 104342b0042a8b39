"""How responsive `skytrace demo` is for its user: time to the first map view, and the live map's step latency
while the simulation and the offline chain run beside it.

Starts `skytrace demo --headless` as a user would, polls the map's URL until it answers, and listens on its
websocket as the page does: every `status` message carries the duration of the last pipeline step, and the gap
between two websocket messages is what the page's "link" age shows (NO CONNECTION after 5 s). The demo's own
output lines are time-stamped to split the run into phases (simulating, offline chain running, replay only).

    python bench/bench_demo.py --out bench/out/bench_demo.json            # kyiv-night, 60x (~6 min)
    python bench/bench_demo.py --speed 120 --out bench/out/bench_demo.json
    python bench/bench_demo.py --attach http://127.0.0.1:8080 --duration 60   # a demo already running
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 1),
            "p99": round(float(np.percentile(a, 99)), 1), "max": round(float(a.max()), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="kyiv-night")
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=Path("bench/out/bench_demo.json"))
    ap.add_argument("--attach", default="", help="listen to the map of a demo already running at this URL")
    ap.add_argument("--duration", type=float, default=60.0, help="with --attach: seconds to listen")
    args = ap.parse_args()
    if args.attach:
        attach(args.attach.rstrip("/"), args.duration, args.out)
        return
    from websockets.sync.client import connect

    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="skytrace-bench-demo-"))
    exe = str(Path(sys.executable).parent / "skytrace")
    t0 = time.monotonic()
    proc = subprocess.Popen([exe, "demo", "--headless", "--scenario", args.scenario, "--out", str(work / "d"),
                             "--port", str(port), "--speed", str(args.speed)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []

    def read_output() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - t0, line.rstrip()))
            print(f"{lines[-1][0]:7.1f}s  {line.rstrip()}", flush=True)

    threading.Thread(target=read_output, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    t_map = None
    while proc.poll() is None and t_map is None:
        try:
            with urllib.request.urlopen(url + "/api/v1/sensors", timeout=2) as r:
                if json.loads(r.read())["sensors"]:
                    with urllib.request.urlopen(url + "/", timeout=2) as page:
                        page.read()
                    t_map = time.monotonic() - t0
        except OSError:
            time.sleep(0.1)
    msgs: list[tuple[float, str, float | None, int]] = []  # (wall s since start, type, step ms, n tracks)
    done = threading.Event()

    def listen() -> None:  # reconnects like the page does (a --loop round or a restart closes the socket)
        while not done.is_set() and proc.poll() is None:
            try:
                with connect(url.replace("http", "ws") + "/api/v1/ws", open_timeout=5) as ws:
                    while not done.is_set():
                        m = json.loads(ws.recv(timeout=30))
                        msgs.append((time.monotonic() - t0, m["type"], m.get("step_ms_last"),
                                     len(m.get("track") or [])))
            except Exception:
                time.sleep(0.5)

    threading.Thread(target=listen, daemon=True).start()
    proc.wait()
    done.set()
    t_end = time.monotonic() - t0

    def at(prefix: str) -> float | None:
        return next((t for t, ln in lines if prefix in ln), None)

    t_chain0, t_chain1 = at("steps 2-5"), at("wrote ")
    phases = {"simulating": (t_map or 0.0, t_chain0 or t_end), "offline chain": (t_chain0 or t_end, t_chain1 or t_end),
              "replay only": (t_chain1 or t_end, t_end)}
    ws_times = [m[0] for m in msgs]
    result: dict = {"scenario": args.scenario, "speed": args.speed, "exit_code": proc.returncode,
                    "first_map_view_s": None if t_map is None else round(t_map, 1),
                    "first_track_s": next((round(m[0], 1) for m in msgs if m[1] == "tracks" and m[3] > 0), None),
                    "run_s": round(t_end, 1), "phases": {}}
    for name, (a, b) in phases.items():
        steps = [m[2] for m in msgs if m[1] == "status" and m[2] is not None and a <= m[0] < b]
        ts = [t for t in ws_times if a <= t < b]
        gaps = np.diff(ts) * 1e3 if len(ts) > 1 else np.zeros(0)
        result["phases"][name] = {"from_s": round(a, 1), "to_s": round(b, 1), "step_ms": _stats(steps),
                                  "ws_gap_ms": _stats(gaps.tolist()),
                                  "ws_gaps_over_1s": int((gaps > 1000).sum()),
                                  "ws_gaps_over_5s": int((gaps > 5000).sum())}
    result["demo_output"] = [f"{t:.1f}s {ln}".replace(str(work / "d"), "<out>") for t, ln in lines]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "demo_output"}, indent=1))


def attach(url: str, duration_s: float, out: Path) -> None:
    """Listen to a running demo's websocket for ``duration_s``: step durations, gaps between messages, the replay
    speed (the status's ``clock_speed``) and what the status says the offline side is doing."""
    from websockets.sync.client import connect

    msgs: list[tuple[float, str, float | None, float | None]] = []
    t0 = time.monotonic()
    with connect(url.replace("http", "ws") + "/api/v1/ws", open_timeout=10) as ws:
        while (now := time.monotonic() - t0) < duration_s:
            try:
                m = json.loads(ws.recv(timeout=max(0.1, duration_s - now)))
            except TimeoutError:
                break
            msgs.append((time.monotonic() - t0, m["type"], m.get("step_ms_last"), m.get("clock_speed")))
    ts = [m[0] for m in msgs]
    gaps = np.diff(ts) * 1e3 if len(ts) > 1 else np.zeros(0)
    steps = [m[2] for m in msgs if m[1] == "status" and m[2] is not None]
    speeds = [m[3] for m in msgs if m[1] == "status" and m[3] is not None]
    with urllib.request.urlopen(url + "/api/v1/status", timeout=10) as r:
        status = json.loads(r.read())
    result = {"url": url, "duration_s": duration_s, "messages": len(msgs), "step_ms": _stats(steps),
              "ws_gap_ms": _stats(gaps.tolist()), "ws_gaps_over_1s": int((gaps > 1000).sum()),
              "ws_gaps_over_5s": int((gaps > 5000).sum()),
              "clock_speed": _stats(speeds), "step_ms_max_since_start": status.get("step_ms_max"),
              "detections_in": status.get("n_in")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
