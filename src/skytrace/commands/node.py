"""``skytrace node``: the acoustic node. Multichannel audio (WAV file or sound card) -> acoustic detections."""

from __future__ import annotations

from pathlib import Path

import typer


def node(
    array: str = typer.Option("", "--array", help="ARRAY.json: node id, position, microphone positions."),
    wav: str = typer.Option("", "--wav", help="Multichannel 16-bit PCM WAV (channel i = microphone i)."),
    t0: str = typer.Option("", "--t0", help="UNIX time (s) of the WAV's first sample."),
    out: str = typer.Option("", "--out", help="detections.jsonl to write."),
    device: str = typer.Option("", "--device", help="Capture live from this sound device (name or index)."),
    duration: float = typer.Option(0.0, "--duration", help="Live capture: stop after this many seconds (0: Ctrl-C)."),
    mqtt: str = typer.Option("", "--mqtt", help="Publish detections to this MQTT broker HOST:PORT (QoS 1)."),
    key: str = typer.Option("", "--key", help="Sign every MQTT message with this Ed25519 private key (PEM, from "
                                             "`skytrace keys register ID --generate FILE`): a service run with "
                                             "--keys accepts only signed reports."),
    mqtt_user: str = typer.Option("", "--mqtt-user", help="The node's broker user name (its password from the "
                                                          "environment variable SKYTRACE_MQTT_PASSWORD, never argv)."),
    report_other: bool = typer.Option(False, "--report-other",
                                      help="Also write lines for harmonic sources classified `other`."),
) -> None:
    """Hear drones: detect engine and rotor sounds, measure their bearing, write acoustic detections."""
    from skytrace.errors import SkytraceError
    from skytrace.node.array import load_array
    from skytrace.node.processor import NodeConfig
    from skytrace.node.run import DetectionSink, run_device, run_wav

    if not array:
        raise SkytraceError("--array ARRAY.json is required")
    if bool(wav) == bool(device):
        raise SkytraceError("give exactly one input: --wav FILE.wav (with --t0) or --device NAME")
    if not out and not mqtt:
        raise SkytraceError("give an output: --out DETECTIONS.jsonl and/or --mqtt HOST:PORT")
    t0_s = None
    if wav:
        if not t0:
            raise SkytraceError("--t0 UNIX_S (time of the first sample) is required with --wav")
        try:
            t0_s = float(t0)
        except ValueError:
            raise SkytraceError(f"--t0 must be a number of UNIX seconds, got {t0!r}") from None
    elif t0:
        raise SkytraceError("--t0 applies to --wav only (live capture is time-stamped by the clock)")
    if duration < 0:
        raise SkytraceError("--duration must be >= 0")
    if (key or mqtt_user) and not mqtt:
        raise SkytraceError("--key and --mqtt-user apply to --mqtt (the file output is not signed)")
    arr = load_array(array)
    signer = None
    if key:
        from skytrace.security.keys import load_private_key
        from skytrace.security.signing import Signer

        signer = Signer(arr.id, load_private_key(key))
    hostport = None
    if mqtt:
        from skytrace.service.build import parse_hostport

        hostport = parse_hostport(mqtt, 1883)
    cfg = NodeConfig(report_other=report_other)
    import os

    sink = DetectionSink(Path(out) if out else None, hostport, arr.id, signer=signer, username=mqtt_user,
                         password=os.environ.get("SKYTRACE_MQTT_PASSWORD", ""))
    try:
        if wav:
            res = run_wav(arr, Path(wav), t0_s, sink, cfg,
                          progress=lambda s: typer.echo(f"  {s:.0f} s of audio processed", err=True))
        else:
            res = run_device(arr, device, sink, duration or None, cfg,
                             progress=lambda s: typer.echo(f"  {s:.0f} s captured", err=True))
    finally:
        sink.close()
    rate = 1000.0 * res.cpu_s / max(res.audio_s, 1e-9)
    where = " and ".join(x for x in (out and str(out), mqtt and f"mqtt://{mqtt}") if x)
    typer.echo(f"{arr.id}: {res.audio_s:.1f} s of {arr.n_mics}-channel audio, {res.frames} frames, "
               f"{res.detections} detections -> {where} ({rate:.0f} ms CPU per s of audio)"
               + (f"; {res.overflows} audio blocks lost to overflow" if res.overflows else ""))


def register(app: typer.Typer) -> None:
    app.command("node")(node)
