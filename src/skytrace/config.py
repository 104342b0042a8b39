"""One configuration for every mode: ``skytrace.toml``.

Every stage keeps its parameters in a typed dataclass next to its code (``TrackerConfig`` beside the tracker,
and so on); this module gathers them into one :class:`SkytraceConfig`, one TOML section each, so that
``skytrace track``, ``alerts``, ``demo``, ``serve`` and ``replay`` all read the same file and behave the same.

Where the file comes from, first found wins: ``--config FILE`` (global option), the ``SKYTRACE_CONFIG``
environment variable, ``./skytrace.toml``; else the built-in defaults. Unknown sections or keys and wrongly typed
values are errors naming the key (a typo must not silently fall back to a default).

Field documentation is the trailing ``# comment`` of each field in its dataclass: ``skytrace config show``
prints the effective values with those comments, ``skytrace config show --markdown`` writes the reference in
docs/configuration.md (a test keeps the two in sync).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import itertools
import math
import os
import re
import tokenize
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skytrace.errors import SkytraceError

ENV_VAR = "SKYTRACE_CONFIG"
DEFAULT_FILE = "skytrace.toml"


@dataclass
class ZonesConfig:
    """Which zones are alerted (section ``[zones]``)."""

    source: str = "default"  # "default" = 27 oblasts + square cells; "oblasts" = oblasts only; or a zones.geojson path
    cell_km: float = 15.0  # km; side of the square cells of the default zones (about a raion's tenth)
    shelter_s: float = 60.0  # s; time to reach shelter in a default cell, added to the lead time wanted


LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")  # the service binds to loopback; other Host names = DNS rebinding


@dataclass
class ServiceConfig:
    """The live service (section ``[service]``)."""

    port: int = 8080  # HTTP port, always bound to 127.0.0.1 (put a TLS reverse proxy in front to publish)
    step_s: float = 0.25  # s; wall-clock period of pipeline steps and websocket updates (floor of the latency)
    tracker_frame_s: float = 0.25  # s; live tracker frame: short frames spread the work evenly over the steps
    track_store_every_s: float = 1.0  # s; track states are stored at most this often (detections: all)
    stale_after_s: float = 15.0  # s; no report for this long marks the feed as stalled on the map
    cap_status: str = "Exercise"  # CAP status: "Actual" only for real operations, so a replay never alerts for real
    max_pending: int = 2_000_000  # reports kept while the store fails (oldest dropped beyond, counted)
    max_queued_reports: int = 100_000  # reports waiting for one step; beyond, acoustic then sightings shed (counted)
    step_load_max: float = 0.5  # share of wall time a step may use; reports beyond it are shed from tracking (0 off)
    inbox_max_queued: int = 20_000  # messages waiting for their commit; beyond, HTTP gets 503, MQTT waits in the broker
    keys: str = ""  # path of the sensor key registry (skytrace keys); set: HTTP and MQTT accept only signed batches
    allowed_hosts: list[str] = field(default_factory=lambda: list(LOCAL_HOSTS))  # Host names served; others: 400
    allowed_origins: list[str] = field(default_factory=list)  # extra browser Origins (scheme://host:port of a proxy)
    signed_max_future_s: float = 5.0  # s; a signed batch sent further ahead of our clock is rejected (out_of_window)
    signed_max_age_s: float = 120.0  # s; a signed batch sent longer ago is rejected: bounds replay after a restart
    replay_window: int = 1024  # sequence numbers remembered per sensor for reordered QoS 1 delivery; older = replayed
    map_tiles: str = ""  # base-map tiles: "" none (offline); a z/x/y directory, .mbtiles, .pmtiles, or an http(s) URL


# section name -> (module, class); lazily imported so that ``skytrace --help`` stays fast
SECTIONS: dict[str, tuple[str, str]] = {
    "pipeline": ("skytrace.pipeline", "PipelineConfig"),
    "tracker": ("skytrace.tracking.tracker", "TrackerConfig"),
    "assess": ("skytrace.assess.predict", "AssessConfig"),
    "alerting": ("skytrace.alerting.policy", "DEFAULT_POLICY"),  # the policy named by [alerting] policy
    "zones": ("skytrace.config", "ZonesConfig"),
    "service": ("skytrace.config", "ServiceConfig"),
    "identity": ("skytrace.alerting.identity", "IdentityCheckConfig"),
}


def section_class(name: str, policy: str | None = None) -> type:
    """The dataclass of a section; for ``[alerting]``, the config class of the named (default) alert policy."""
    if name == "alerting":
        from skytrace.alerting.policy import DEFAULT_POLICY, policy_class

        return policy_class(policy or DEFAULT_POLICY).config_class
    mod, cls = SECTIONS[name]
    return getattr(importlib.import_module(mod), cls)


@dataclass
class SkytraceConfig:
    """The effective configuration: one dataclass per section, plus where it was read from."""

    sections: dict[str, Any] = field(default_factory=dict)
    source: str = "built-in defaults"
    alerting_policy_name: str | None = None  # [alerting] policy; None = the default policy

    @property
    def alerting_policy(self) -> str:
        from skytrace.alerting.policy import DEFAULT_POLICY

        return self.alerting_policy_name or DEFAULT_POLICY

    def __getattr__(self, name: str) -> Any:
        if name in SECTIONS:
            sec = self.__dict__.setdefault("sections", {})
            if name not in sec:
                sec[name] = section_class(name, self.__dict__.get("alerting_policy_name"))()
            return sec[name]
        raise AttributeError(name)


_override_path: Path | None = None


def set_config_path(path: Path | None) -> None:
    """The global ``--config`` option of the CLI."""
    global _override_path
    _override_path = path


def config_path() -> Path | None:
    if _override_path is not None:
        return _override_path
    if env := os.environ.get(ENV_VAR):
        return Path(env)
    p = Path(DEFAULT_FILE)
    return p if p.is_file() else None


def _convert(section: str, cls: type, values: dict) -> Any:
    import msgspec

    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise SkytraceError(f"[{section}] has no setting {key!r} (known: {', '.join(sorted(known))})")
    try:
        obj: Any = msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SkytraceError(f"[{section}] {exc}") from None
    for f in dataclasses.fields(cls):
        v = getattr(obj, f.name)
        if isinstance(v, float) and math.isnan(v):
            raise SkytraceError(f"[{section}] {f.name} must be a number, got nan")
    return obj


def parse_config(text: str, source: str = "<string>") -> SkytraceConfig:
    """A configuration from TOML text; unknown sections/keys and bad types are errors naming the key."""
    try:
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SkytraceError(f"{source}: not valid TOML: {exc}") from None
    conf = SkytraceConfig(source=source)
    for name, values in raw.items():
        if name not in SECTIONS:
            raise SkytraceError(f"{source}: unknown section [{name}] (known: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise SkytraceError(f"{source}: [{name}] must be a table")
        try:
            if name == "alerting":
                values = dict(values)
                pol = values.pop("policy", None)
                if pol is not None and not isinstance(pol, str):
                    raise SkytraceError("[alerting] policy must be a policy name such as \"evidence\"")
                conf.alerting_policy_name = pol
                conf.sections[name] = _convert(name, section_class(name, pol), values)
            else:
                conf.sections[name] = _convert(name, section_class(name), values)
        except SkytraceError as exc:
            raise SkytraceError(f"{source}: {exc}") from None
    return conf


def load_config(path: Path | str | None = None) -> SkytraceConfig:
    """The effective configuration (see the module docstring for where it is looked for)."""
    p = Path(path) if path is not None else config_path()
    if p is None:
        return SkytraceConfig()
    if not p.is_file():
        raise SkytraceError(f"configuration file {p} not found")
    if p.stat().st_size > 1 << 20:
        raise SkytraceError(f"{p}: a configuration file over 1 MiB is not plausible")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SkytraceError(f"{p}: not UTF-8 text") from None
    return parse_config(text, str(p))


def load_zones(conf: SkytraceConfig, override: Path | str | None = None) -> Any:
    """The zones of the configuration (``--zones FILE`` overrides ``[zones] source``)."""
    from skytrace.zones import builtin_oblasts, read_zones
    from skytrace.zones_grid import default_zones

    zc = conf.zones
    src = str(override) if override is not None else zc.source
    if src == "default":
        return default_zones(zc.cell_km, shelter_s=zc.shelter_s)
    if src == "oblasts":
        return builtin_oblasts()
    return read_zones(src)


# -------------------------------------------------------------------------------------------------- docs
def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its documentation: the attribute docstring under the field, else its trailing ``# comment``."""
    import ast
    import textwrap

    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    body = ast.parse(src).body[0].body  # type: ignore[attr-defined]
    for stmt, nxt in itertools.pairwise(body):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            out[stmt.target.id] = " ".join(nxt.value.value.split())
    src = inspect.getsource(cls)
    pat = re.compile(r"^\s+([a-z_][a-z0-9_]*)\s*:")
    lines = src.splitlines()
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    for i, line in enumerate(lines, start=1):
        if (m := pat.match(line)) and i in comments:
            out.setdefault(m.group(1), comments[i])
    return out


def _toml_value(v: Any) -> str:
    if v is None:
        return '"none"  # (unset)'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def show_toml(conf: SkytraceConfig) -> str:
    """The effective configuration as TOML, each key with its documentation as a comment."""
    out = [f"# skytrace configuration (effective; read from {conf.source})"]
    for name in SECTIONS:
        obj = getattr(conf, name)
        cls = type(obj)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        out += ["", f"[{name}]" + (f"  # {doc}" if doc else "")]
        if name == "alerting":
            out.append(f"{'policy = ' + _toml_value(conf.alerting_policy):<40} # alert policy (skytrace.alerting "
                       "registry); the keys below are its settings")
        notes = field_comments(cls)
        for f in dataclasses.fields(cls):
            v = getattr(obj, f.name)
            line = f"{f.name} = {_toml_value(v)}" if v is not None else f"# {f.name} = (unset)"
            if f.name in notes:
                line = f"{line:<40} # {notes[f.name]}"
            out.append(line)
    return "\n".join(out) + "\n"


def _type_name(f: dataclasses.Field) -> str:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return str(t).replace("|", "or")


def show_markdown() -> str:
    """The configuration reference (docs/configuration.md body): every field, type, default and why."""
    out = ["# skytrace configuration reference", "",
           "Generated by `skytrace config show --markdown` from the dataclasses (a test checks it is current).",
           "Every mode (`track`, `alerts`, `demo`, `serve`, `replay`) reads the same file: `--config FILE`, else",
           f"`${ENV_VAR}`, else `./{DEFAULT_FILE}`, else these defaults. `skytrace config show` prints the effective",
           "values. Units are in the descriptions (s, m, m/s, deg).", ""]
    from skytrace.alerting.policy import DEFAULT_POLICY, policy_names

    blocks: list[tuple[str, type]] = []
    for name in SECTIONS:
        if name == "alerting":
            blocks += [(f"[alerting] with policy = \"{p}\"" + (" (the default)" if p == DEFAULT_POLICY else ""),
                        section_class(name, p)) for p in policy_names()]
        else:
            blocks.append((f"[{name}]", section_class(name)))
    for heading, cls in blocks:
        out += [f"## {heading}", "", (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "", "",
                "| key | type | default | meaning |", "|---|---|---|---|"]
        notes = field_comments(cls)
        obj = cls()
        for f in dataclasses.fields(cls):
            default = _toml_value(getattr(obj, f.name)).split("  #")[0]
            note = notes.get(f.name, "").replace("|", "\\|")
            out.append(f"| `{f.name}` | {_type_name(f)} | `{default}` | {note} |")
        out.append("")
    return "\n".join(out)
