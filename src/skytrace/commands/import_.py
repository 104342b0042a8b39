"""``skytrace import``: ADS-B, Remote ID and ASTERIX radar reports -> detections.jsonl + sensors.json.

(The module is ``import_`` because ``import`` is a Python keyword; the command is ``skytrace import``.)
"""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("sbs", "aircraft-json", "cat048", "cat015", "remote-id")


def _site(text: str | None):
    from skytrace.errors import SkytraceError
    from skytrace.interop.asterix import RadarSite

    if text is None:
        return None
    try:
        lat, lon, alt = (float(x) for x in text.split(","))
    except ValueError:
        raise SkytraceError(f"--site {text!r}: expected LAT,LON,ALT_M (degrees, degrees, metres)") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and -500 <= alt <= 9000):
        raise SkytraceError(f"--site {text!r}: latitude, longitude or altitude out of range")
    return RadarSite(lat, lon, alt)


def import_reports(fmt: str, in_path: Path, out: Path, sensors_out: Path, site: str | None = None,
                   day: str | None = None, framing: str = "auto", assume_alt_m: float | None = None,
                   skip_bad: bool = False):
    """Decode ``in_path`` and write detections (time order) and their sensors; returns the ImportResult."""
    from datetime import date

    from skytrace.errors import FormatError, SkytraceError
    from skytrace.io import formats

    if fmt not in FORMATS:
        raise SkytraceError(f"unknown import format {fmt!r}; one of {', '.join(FORMATS)}")
    if not in_path.is_file():
        raise SkytraceError(f"{in_path}: no such file")
    on_error = "skip" if skip_bad else "raise"
    if fmt == "sbs":
        from skytrace.interop.adsb import read_sbs

        res = read_sbs(str(in_path), on_error)
    elif fmt == "aircraft-json":
        from skytrace.interop.adsb import read_aircraft_json

        res = read_aircraft_json(str(in_path), on_error)
    elif fmt == "remote-id":
        from skytrace.interop.remote_id import read_remote_id

        res = read_remote_id(str(in_path), on_error)
    else:
        from skytrace.interop import asterix

        try:
            d = date.fromisoformat(day) if day else None
        except ValueError:
            raise SkytraceError(f"--date {day!r}: expected YYYY-MM-DD") from None
        cfg = asterix.RadarImportConfig(site=_site(site), day=d, assume_alt_m=assume_alt_m)
        size = in_path.stat().st_size
        if size > asterix.MAX_INPUT_BYTES:
            raise FormatError(str(in_path), f"file of {size} bytes is over the 1 GiB limit; split it")
        data = in_path.read_bytes()
        kind = asterix.detect_framing(data) if framing == "auto" else framing
        if kind not in ("raw", "final"):
            raise SkytraceError("--framing must be auto, raw or final")
        blocks = (asterix.split_datablocks if kind == "raw" else asterix.split_final)(data, str(in_path))
        decode = asterix.decode_cat048 if fmt == "cat048" else asterix.decode_cat015
        res = decode(blocks, cfg, str(in_path))
        if day is None and res.detections:
            res.notes.append(f"ASTERIX carries the time of day only: dates taken as {cfg.day or 'today (UTC)'}; "
                             "give --date YYYY-MM-DD for a recording of another day")
    res.detections.sort(key=lambda det: det.t)
    formats.write_jsonl(out, res.detections)
    formats.write_sensors(sensors_out, sorted(res.sensors.values(), key=lambda s: s.id))
    return res


def import_cmd(
    fmt: str = typer.Option(..., "--format", help="sbs | aircraft-json | cat048 | cat015 | remote-id"),
    in_path: Path = typer.Option(..., "--in", help="Input file."),
    out: Path = typer.Option(..., "--out", help="detections.jsonl to write."),
    sensors_out: Path | None = typer.Option(None, "--sensors-out",
                                            help="sensors.json to write (default: next to --out)."),
    site: str | None = typer.Option(None, "--site", help="Radar position LAT,LON,ALT_M (CAT048/CAT015 polar)."),
    day: str | None = typer.Option(None, "--date", help="ASTERIX: UTC date of the recording (YYYY-MM-DD)."),
    framing: str = typer.Option("auto", "--framing", help="ASTERIX file framing: auto | raw | final."),
    assume_alt_m: float | None = typer.Option(None, "--assume-alt-m",
                                              help="ASTERIX: height (m) assumed for 2-D plots without one."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad lines (text formats)."),
) -> None:
    """Import reports of other systems (ADS-B, Remote ID, ASTERIX radar) as skytrace detections and sensors."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    sensors_out = sensors_out or out.parent / "sensors.json"
    res = import_reports(fmt, in_path, out, sensors_out, site, day, framing, assume_alt_m, skip_bad)
    for note in res.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"{res.summary()} -> {out}, {sensors_out}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
