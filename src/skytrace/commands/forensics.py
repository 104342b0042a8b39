"""``skytrace forensics ...``: link debris to tracks and launch areas, custody log, evidence registry,
component attribution, sanctions screening, the investigator's report.

Top-level imports stay light (typer, stdlib): the work happens in :mod:`skytrace.forensics`, imported inside each
command so that ``skytrace --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

forensics_app = typer.Typer(name="forensics", no_args_is_help=True, add_completion=False,
                            help="Document downed drones: link debris to tracks and launch areas, custody log, "
                                 "evidence registry, component attribution, sanctions screening, report.")


@forensics_app.command("link")
def link(
    tracks: Path = typer.Option(..., "--tracks", help="tracks.jsonl (the whole history of each track)."),
    debris: Path = typer.Option(..., "--debris", help="debris.jsonl: one {\"id\", \"t\", \"lat\", \"lon\"} a line "
                                                     "(recovery time and place)."),
    launch_areas: Path | None = typer.Option(None, "--launch-areas",
                                             help="Launch-area catalogue (places.json layout); default built-in."),
    out: Path = typer.Option(..., "--out", help="links.jsonl to write."),
) -> None:
    """Link each debris item to the tracks that ended where it was found, and back-project to launch areas."""
    from skytrace.forensics.linkrun import link_files

    def progress(done: int, total: int) -> None:
        if done == total or done % max(total // 10, 1) == 0:
            typer.echo(f"back-projected {done}/{total} candidate tracks", err=True)

    lines = link_files(tracks, debris, launch_areas, out, progress=progress)
    linked = sum(1 for ln in lines if ln["tracks"])
    typer.echo(f"{len(lines)} debris items, {linked} with candidate tracks -> {out}")


VAULT_OPT = typer.Option(Path("evidence"), "--vault", help="Evidence vault directory (custody log, originals).")
DB_OPT = typer.Option("", "--db", help="Store: SQLite path, sqlite:///path or postgresql://... (default: "
                                     "skytrace.db in the vault; give the service's --db to share its store).")
ACTOR_OPT = typer.Option(..., "--actor", help="Who does this (recorded in the custody log).")
KEY_OPT = typer.Option(None, "--key", help="Ed25519 signing key (PEM); default: keys/custody_ed25519.pem in the vault.")


def _open(vault: Path, db: str, key: Path | None = None):
    from skytrace.forensics.custody import Vault
    from skytrace.forensics.registry import Registry

    v = Vault.open(vault, key)
    return v, Registry(db or str(vault / "skytrace.db"), v)


@forensics_app.command("init")
def init(vault: Path = VAULT_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Create an evidence vault: signing key, trusted key list, first custody entry."""
    from skytrace.forensics.custody import Vault

    v = Vault.create(vault, key, actor)
    pub = v.trusted_path.read_text().strip()
    typer.echo(f"vault {vault} created; signing key {v.key_path} (keep it private); public key {pub}")
    typer.echo("record the public key outside the vault: `forensics verify --trusted-key` checks against it")


@forensics_app.command("verify")
def verify(vault: Path = VAULT_OPT, db: str = DB_OPT,
           trusted_key: list[str] = typer.Option([], "--trusted-key", help="Trusted public key(s), hex; default: "
                                                                          "keys/trusted.pub of the vault."),
           head: str | None = typer.Option(None, "--head", help="Last entry hash recorded earlier (detects "
                                                                 "truncation)."),
           tsa_ca: Path | None = typer.Option(None, "--tsa-ca", help="CA certificate (PEM) of the time-stamping "
                                                                    "authority: RFC 3161 tokens must chain to it.")
           ) -> None:
    """Check the custody log (edits, deletions, insertions, reordering, keys), every stored original and every
    RFC 3161 timestamp token."""
    from skytrace.forensics.custody import CustodyError, verify_vault

    try:
        ca_pem = tsa_ca.read_bytes() if tsa_ca else None
    except OSError as exc:
        raise CustodyError(f"cannot read --tsa-ca {tsa_ca}: {exc.strerror}") from None
    findings, n = verify_vault(vault, trusted_key or None, head, ca_pem)
    problems = [str(f) for f in findings]
    if (vault / "skytrace.db").exists() or db:
        _, reg = _open(vault, db)
        problems += reg.check_against_log()
    if problems:
        for p in problems:
            typer.echo(f"TAMPERED {p}")
        raise typer.Exit(1)
    from skytrace.forensics.custody import Vault

    count, h = Vault.open(vault).head()
    typer.echo(f"intact: {n} entries, all originals present and unchanged; head {h}")


@forensics_app.command("timestamp")
def timestamp(tsa: str = typer.Option(..., "--tsa", help="URL of an RFC 3161 time-stamping authority."),
              tsa_ca: Path | None = typer.Option(None, "--tsa-ca", help="The TSA's CA certificate (PEM) to check "
                                                                      "the reply against."),
              vault: Path = VAULT_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Have a time-stamping authority (RFC 3161) sign the custody log's head hash; store and log the token."""
    from skytrace.forensics.custody import CustodyError, Vault
    from skytrace.forensics.timestamp import timestamp_head

    try:
        ca_pem = tsa_ca.read_bytes() if tsa_ca else None
    except OSError as exc:
        raise CustodyError(f"cannot read --tsa-ca {tsa_ca}: {exc.strerror}") from None
    path, info = timestamp_head(Vault.open(vault, key), tsa, actor, ca_pem)
    typer.echo(f"head {info.digest_hex} timestamped {info.gen_time} by {info.tsa_subject} (serial {info.serial})"
               f" -> {path}")


@forensics_app.command("add-incident")
def add_incident(id: str = typer.Option(..., "--id"),
                 time: str = typer.Option(..., "--time", help="ISO 8601 (with zone) or UNIX s."),
                 lat: float = typer.Option(..., "--lat"), lon: float = typer.Option(..., "--lon"),
                 place: str = typer.Option("", "--place"), description: str = typer.Option("", "--description"),
                 tracks: str = typer.Option("", "--tracks", help="Linked track ids, comma-separated."),
                 vault: Path = VAULT_OPT, db: str = DB_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT
                 ) -> None:
    """Register an incident (time, place, linked tracks)."""
    _, reg = _open(vault, db, key)
    reg.add_incident(actor, id, time, lat, lon, place, description, [t for t in tracks.split(",") if t.strip()])
    typer.echo(f"incident {id} registered")


@forensics_app.command("add-debris")
def add_debris(id: str = typer.Option(..., "--id"), incident: str = typer.Option(..., "--incident"),
               time: str = typer.Option(..., "--time", help="Recovery time: ISO 8601 (with zone) or UNIX s."),
               lat: float = typer.Option(..., "--lat"), lon: float = typer.Option(..., "--lon"),
               recovered_by: str = typer.Option("", "--by"), condition: str = typer.Option("", "--condition"),
               markings: str = typer.Option("", "--markings", help="Airframe markings as read."),
               serial: str = typer.Option("", "--serial"),
               vault: Path = VAULT_OPT, db: str = DB_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Register a recovered debris item."""
    _, reg = _open(vault, db, key)
    reg.add_debris(actor, id, incident, time, lat, lon, recovered_by, condition, markings, serial)
    typer.echo(f"debris {id} registered")


@forensics_app.command("add-component")
def add_component(id: str = typer.Option(..., "--id"), debris: str = typer.Option(..., "--debris"),
                  category: str = typer.Option(..., "--category", help="engine, gnss, imu, flight_controller, "
                                                                       "servo, transceiver, power_converter, fuze, "
                                                                       "airframe, other"),
                  marking: str = typer.Option("", "--marking", help="Raw marking text as read (any script)."),
                  part_number: str = typer.Option("", "--part-number"),
                  manufacturer: str = typer.Option("", "--manufacturer", help="Maker's name or logo as read."),
                  serial: str = typer.Option("", "--serial"), date_code: str = typer.Option("", "--date-code"),
                  markings_removed: bool = typer.Option(False, "--markings-removed"),
                  vault: Path = VAULT_OPT, db: str = DB_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT
                  ) -> None:
    """Register a component found in a debris item."""
    _, reg = _open(vault, db, key)
    row = reg.add_component(actor, id, debris, category, marking, part_number, manufacturer, serial, date_code,
                            markings_removed)
    typer.echo(f"component {id} registered" + (f" ({row['handling_note']})" if row["handling_note"] else ""))


@forensics_app.command("add-media")
def add_media(files: list[Path] = typer.Argument(..., help="Photos or other files (stored untouched)."),
              debris: str = typer.Option("", "--debris"), component: str = typer.Option("", "--component"),
              vault: Path = VAULT_OPT, db: str = DB_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Store files as content-addressed originals (SHA-256, EXIF kept) linked to a debris item or component."""
    _, reg = _open(vault, db, key)
    for f in files:
        row = reg.add_media(actor, f, debris, component)
        typer.echo(f"{f.name}: {row['sha256']}")


@forensics_app.command("working-copy")
def working_copy(sha256: str = typer.Argument(...), purpose: str = typer.Option(..., "--purpose"),
                 vault: Path = VAULT_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Make a logged working copy of an original (the original stays untouched)."""
    from skytrace.forensics.custody import Vault

    typer.echo(str(Vault.open(vault, key).working_copy(sha256, actor, purpose)))


@forensics_app.command("list")
def list_records(kind: str = typer.Argument(..., help="incident, debris, component, media, attribution, "
                                                      "screening"),
                 as_json: bool = typer.Option(False, "--json"), vault: Path = VAULT_OPT, db: str = DB_OPT) -> None:
    """List registered records."""
    import json

    _, reg = _open(vault, db)
    rows = reg.list(kind)
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in r.items() if v not in (None, "", "[]", "{}")))
    typer.echo(f"{len(rows)} {kind} record(s)")


@forensics_app.command("attribute")
def attribute(catalogue: Path = typer.Option(..., "--catalogue", help="Reference catalogue (JSON or CSV)."),
              component: str | None = typer.Option(None, "--component", help="One component (default: all)."),
              vault: Path = VAULT_OPT, db: str = DB_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Score components against the reference catalogue; every score explained."""
    from skytrace.forensics.attribution import attribute_registry

    _, reg = _open(vault, db, key)
    for cid, cands in attribute_registry(reg, catalogue, actor, component).items():
        for i, c in enumerate(cands, start=1):
            tag = "MATCH" if c.match and i == 1 else "     "
            typer.echo(f"{cid} #{i} {tag} {c.score:.3f} {c.entry.manufacturer} [{c.entry.id}]: {c.explain()}")


@forensics_app.command("screen")
def screen(entities: Path = typer.Option(..., "--entities", help="FollowTheMoney entities (JSON lines) you loaded, "
                                                                "e.g. an OpenSanctions export."),
           dataset: str = typer.Option("", "--dataset", help="Dataset name (default: the file name)."),
           subject: list[str] = typer.Option([], "--subject", help="Extra supplier names to screen."),
           threshold: float = typer.Option(0.7, "--threshold"),
           vault: Path = VAULT_OPT, db: str = DB_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Screen attributed manufacturers (and --subject names) against FtM data; hits await a human decision."""
    from skytrace.forensics.sanctions import load_entities, record_hits
    from skytrace.forensics.sanctions import screen as run_screen

    _, reg = _open(vault, db, key)
    ents = load_entities(entities, dataset or None)
    subjects = {(a["manufacturer"], a["country"] or "") for a in reg.list("attribution") if a["is_match"]}
    subjects |= {(s, "") for s in subject}
    hits = run_screen(sorted(subjects), ents, threshold)
    new = record_hits(reg, hits, ents, actor)
    for h in hits:
        typer.echo(f"HIT {h.subject!r} ~ {h.entity_name!r} ({h.entity_id}) score {h.score:.2f}: {h.explanation}")
    typer.echo(f"{len(subjects)} subjects screened against {len(ents.entities)} entities ({ents.dataset}, "
               f"{ents.version}); {len(hits)} hits, {len(new)} new, awaiting review (forensics decide)")


@forensics_app.command("decide")
def decide(hit: str = typer.Argument(..., help="Hit id (forensics list screening)."),
           decision: str = typer.Option(..., "--decision", help="match, no-match or unsure"),
           note: str = typer.Option("", "--note"), vault: Path = VAULT_OPT, db: str = DB_OPT,
           actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Record the reviewer's decision on a screening hit."""
    from skytrace.forensics.sanctions import decide as run_decide

    _, reg = _open(vault, db, key)
    row = run_decide(reg, hit, decision, actor, note)
    typer.echo(f"{hit}: {row['decision']} by {row['reviewer']}")


@forensics_app.command("report")
def report(incident: str = typer.Option(..., "--incident"), out: Path = typer.Option(..., "--out"),
           links: Path | None = typer.Option(None, "--links", help="links.jsonl of `forensics link`."),
           tracks: Path | None = typer.Option(None, "--tracks", help="tracks.jsonl, for the map."),
           launch_areas: Path | None = typer.Option(None, "--launch-areas"),
           pdf: bool = typer.Option(True, "--pdf/--no-pdf"), vault: Path = VAULT_OPT, db: str = DB_OPT,
           actor: str = ACTOR_OPT, key: Path | None = KEY_OPT) -> None:
    """Write the investigator's report of an incident (HTML and PDF)."""
    from skytrace.forensics.report import write_report

    v, reg = _open(vault, db, key)
    files = write_report(reg, v, incident, out, actor, str(links) if links else None,
                         str(tracks) if tracks else None, str(launch_areas) if launch_areas else None, pdf)
    for name, sha in files.items():
        typer.echo(f"{out / name}  sha256 {sha}")


@forensics_app.command("export-ftm")
def export_ftm(incident: str = typer.Option(..., "--incident"), out: Path = typer.Option(..., "--out"),
               vault: Path = VAULT_OPT, db: str = DB_OPT, actor: str = ACTOR_OPT, key: Path | None = KEY_OPT
               ) -> None:
    """Export the incident's findings as FollowTheMoney entities (JSON lines)."""
    import json

    from skytrace.forensics.custody import sha256_file
    from skytrace.forensics.report import export_ftm as run_export

    v, reg = _open(vault, db, key)
    ents = run_export(reg, incident)
    out.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in ents))
    v.append("export", actor, None, {"incident": incident, out.name: sha256_file(out)})
    typer.echo(f"{len(ents)} entities -> {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(forensics_app, name="forensics")
