"""``skytrace keys``: sensor keys (Ed25519) and the key registry the service trusts (register, rotate, revoke)."""

from __future__ import annotations

from pathlib import Path

import typer

keys_app = typer.Typer(help="Sensor keys: register, rotate and revoke the Ed25519 key of each sensor node.",
                       no_args_is_help=True)

REGISTRY = typer.Option(Path("keys.json"), "--registry", help="Key registry file (created by the first register).")


def _public(generate: Path | None, public_key: Path | None) -> bytes:
    from skytrace.errors import SkytraceError
    from skytrace.security.keys import generate_private_key, load_public_key_file

    if (generate is None) == (public_key is None):
        raise SkytraceError("give exactly one of --generate PRIVATE_KEY_FILE or --public-key FILE")
    if generate is not None:
        return generate_private_key(generate)
    return load_public_key_file(public_key)  # type: ignore[arg-type]


@keys_app.command("register")
def register_key(sensor: str = typer.Argument(..., help="Sensor id (as in sensors.json)."),
             registry: Path = REGISTRY,
             generate: Path | None = typer.Option(None, "--generate", help="Create the node's private key here "
                                                  "(mode 0600; copy it to the node, delete it here)."),
             public_key: Path | None = typer.Option(None, "--public-key", help="The node's public key (PEM or "
                                                    "base64), when the node made its own key (best).")) -> None:
    """Register the first key of a sensor."""
    from skytrace.errors import SkytraceError
    from skytrace.security.keys import KeyRegistry

    reg = KeyRegistry.load(registry, missing_ok=True)
    if any(k.status == "active" for k in reg.sensors.get(sensor, [])):  # before a private key is made for nothing
        raise SkytraceError(f"sensor {sensor!r} already has an active key: use `skytrace keys rotate`")
    entry = reg.register(sensor, _public(generate, public_key))
    reg.save()
    typer.echo(f"{sensor}: key {entry.key_id} registered in {registry}")


@keys_app.command("rotate")
def rotate(sensor: str = typer.Argument(...), registry: Path = REGISTRY,
           generate: Path | None = typer.Option(None, "--generate", help="Create the new private key here."),
           public_key: Path | None = typer.Option(None, "--public-key", help="The node's new public key.")) -> None:
    """Give a sensor a new key; its previous key is retired (batches signed with it are rejected)."""
    from skytrace.security.keys import KeyRegistry

    reg = KeyRegistry.load(registry)
    entry = reg.rotate(sensor, _public(generate, public_key))
    reg.save()
    typer.echo(f"{sensor}: new key {entry.key_id}; the previous key is retired")


@keys_app.command("revoke")
def revoke(sensor: str = typer.Argument(...), registry: Path = REGISTRY) -> None:
    """Revoke every key of a sensor (a lost, stolen or compromised node)."""
    from skytrace.security.keys import KeyRegistry

    reg = KeyRegistry.load(registry)
    n = reg.revoke(sensor)
    reg.save()
    typer.echo(f"{sensor}: {n} key(s) revoked")


@keys_app.command("list")
def list_keys(registry: Path = REGISTRY) -> None:
    """Every sensor's keys with their status."""
    from skytrace.security.keys import KeyRegistry

    reg = KeyRegistry.load(registry)
    for sid, keys in sorted(reg.sensors.items()):
        for k in keys:
            typer.echo(f"{sid}\t{k.key_id}\t{k.status}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


@keys_app.command("broker-config")
def broker_config(sensors: Path = typer.Option(..., "--sensors", help="sensors.json: one broker user per sensor."),
                  out: Path = typer.Option(..., "--out", help="Directory for mosquitto.conf, acl, passwd and "
                                                              "credentials.txt (0600)."),
                  port: int = typer.Option(1883, "--port"),
                  bind: str = typer.Option("127.0.0.1", "--bind", help="Listener address.")) -> None:
    """Mosquitto config: per-node passwords, each node may publish only on its own topic, persistence on."""
    from skytrace.io import formats
    from skytrace.security.broker import write_broker_config

    ids = [s.id for s in formats.read_sensors(sensors)]
    write_broker_config(ids, out, port=port, bind=bind)
    typer.echo(f"wrote {out}/mosquitto.conf for {len(ids)} nodes; passwords in {out}/credentials.txt (give each "
               "node its own, then delete the file)")
