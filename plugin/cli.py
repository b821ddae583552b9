"""Operator commands: `flask --app app truth|sandbox|db|installations …`."""

from __future__ import annotations

import json
import re
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from . import installations
from .core.orderid import InvalidOrderId, parse_order_id
from .core.serialize import truth_to_dict
from .store.models import Installation


def register(app: Flask) -> None:
    app.cli.add_command(truth)
    app.cli.add_command(settings_cli)
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(installations_cli)
    from .hosts.zendesk.cli import zendesk_cli

    app.cli.add_command(zendesk_cli)


def _store():
    return current_app.extensions["store"]


@click.command("truth")
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Print the merged record as JSON.")
@click.option("--installation", default=None, help="Installation key (default: the default one).")
@click.option("--refresh", is_flag=True, help="Ignore cached source answers.")
@with_appcontext
def truth(order_id: str, as_json: bool, installation: str | None, refresh: bool) -> None:
    """Print the merged record for ORDER_ID."""
    key = installation or installations.default_key(current_app.config)
    with _store().session() as session:
        tenant = installations.find(session, key)
    if tenant is None:
        raise click.ClickException(f"no installation {key!r}; see `flask installations list`")
    try:
        order = parse_order_id(order_id, tenant.order_name_prefix)
    except InvalidOrderId as exc:
        raise click.BadParameter(exc.reason, param_hint="ORDER_ID") from exc
    record = current_app.extensions["order_truth"].lookup(tenant, order, refresh=refresh)
    if as_json:
        click.echo(json.dumps(truth_to_dict(record), indent=2, ensure_ascii=False))
        return
    click.echo(f"{record.order_name}: {record.headline}")
    for source, report in record.sources.items():
        click.echo(f"  {source.value:<9} {report.system:<12} {report.status.value}"
                   + (f" ({report.error})" if report.error else ""))
    for flag in record.flags:
        click.echo(f"  [{flag.severity.value}] {flag.code.value}: {flag.message}")


settings_cli = AppGroup("settings", help="An installation's settings (validated as on the page).")


def _tenant_for(key: str | None):
    key = key or installations.default_key(current_app.config)
    with _store().session() as session:
        tenant = installations.find(session, key)
    if tenant is None:
        raise click.ClickException(f"no installation {key!r}; see `flask installations list`")
    return tenant


@settings_cli.command("show")
@click.option("--installation", default=None, help="Installation key (default: the default one).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def settings_show(installation: str | None, as_json: bool) -> None:
    """Print every setting and its value."""
    from .tenant_settings import SETTINGS, current

    values = current(_tenant_for(installation).settings)
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    for name, value in values.items():
        click.echo(f"{name:<36} {value!s:<24} {SETTINGS[name].help}")


@settings_cli.command("set")
@click.argument("name")
@click.argument("value")
@click.option("--installation", default=None, help="Installation key (default: the default one).")
def settings_set(name: str, value: str, installation: str | None) -> None:
    """Set NAME to VALUE after the same validation the settings page applies."""
    from marshmallow import ValidationError

    from .tenant_settings import as_changes, validate_changes

    tenant = _tenant_for(installation)
    try:
        loaded = validate_changes({name: value})
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {name: exc.messages}
        raise click.BadParameter("; ".join(str(m) for m in messages.get(name, messages.values())),
                                 param_hint=name) from None
    with _store().session() as session:
        installations.update_settings(session, tenant.id, as_changes(loaded))
    click.echo(f"{tenant.key}: {name} = {loaded[name]}")


sandbox_cli = AppGroup("sandbox", help="The built-in sandbox of simulated upstreams.")


@sandbox_cli.command("scenarios")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def scenarios(as_json: bool) -> None:
    """List the seeded scenarios and their order IDs."""
    from .sandbox.scenarios import SCENARIOS

    rows = [{"scenario": s.name, "order_id": s.order_number} for s in SCENARIOS]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for s in SCENARIOS:
        click.echo(f"{s.order_number:>6}  {s.name:<38} {s.title}")


db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
def upgrade() -> None:
    """Apply all migrations (run once per release for PostgreSQL)."""
    store = _store()
    store.migrate()
    with store.session() as session:
        installations.ensure_builtin(session, current_app.config)
    click.echo(f"database at head ({store.engine.url.render_as_string(hide_password=True)})")


installations_cli = AppGroup("installations", help="Installations (tenants).")


@installations_cli.command("list")
def list_installations() -> None:
    """List installations."""
    with _store().session() as session:
        rows = [(inst.key, inst.host, inst.status, ",".join(sorted(c.source for c in inst.connections)),
                 inst.name)
                for inst in session.scalars(select(Installation).order_by(Installation.id))]
    if not rows:
        click.echo("no installations", err=True)
        sys.exit(0)
    for key, host, status, sources, name in rows:
        click.echo(f"{key:<40} {host:<11} {status:<13} {sources or '-':<40} {name}")


@installations_cli.command("add-zendesk")
@click.option("--subdomain", required=True, help="The 'acme' in acme.zendesk.com.")
@click.option("--installation-id", required=True, help="Zendesk's app installation id.")
@click.option("--app-id", default=None, help="The app's id (default: ZENDESK_APP_ID).")
@click.option("--base-url", default=None, help="Override https://SUBDOMAIN.zendesk.com.")
def add_zendesk(subdomain: str, installation_id: str, app_id: str | None, base_url: str | None) -> None:
    """Register (or reactivate) a Zendesk installation."""
    from .hosts.zendesk.launch import installation_key

    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", subdomain):
        raise click.BadParameter("not a Zendesk subdomain", param_hint="--subdomain")
    if not installation_id.isdigit():
        raise click.BadParameter("must be numeric", param_hint="--installation-id")
    with _store().session() as session:
        installations.register_zendesk(session, subdomain, installation_id, app_id=app_id,
                                       base_url=base_url)
    click.echo(installation_key(subdomain, installation_id))


@installations_cli.command("configure")
@click.argument("key")
@click.option("--source", required=True,
              type=click.Choice(["portal", "processor", "erp", "pos", "helpdesk"]))
@click.option("--system", required=True, help="loop, stripe, netsuite, shopify_pos or zendesk.")
@click.option("--base-url", default="", help="Vendor API base URL (blank: vendor default).")
@click.option("--credential", "credentials", multiple=True, metavar="NAME=VALUE",
              help="Repeat per credential; a value of '-' is read from standard input.")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE")
def configure(key: str, source: str, system: str, base_url: str, credentials: tuple[str, ...],
              options: tuple[str, ...]) -> None:
    """Store one connection for an installation (credentials encrypted at rest)."""
    from .connectors.registry import CONNECTORS

    if source != "helpdesk" and (system not in CONNECTORS or CONNECTORS[system].source.value != source):
        raise click.BadParameter(f"{system!r} is not a {source} connector", param_hint="--system")
    creds = {}
    for item in credentials:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--credential")
        creds[name] = sys.stdin.readline().strip() if value == "-" else value
    opts = dict(o.partition("=")[::2] for o in options)
    box = current_app.extensions["secret_box"]
    with _store().session() as session:
        tenant = installations.find(session, key)
        if tenant is None:
            raise click.ClickException(f"no installation {key!r}")
        installations.save_connection(session, box, tenant.id, source=source, system=system,
                                      base_url=base_url, credentials=creds, options=opts)
    click.echo(f"{key}: {source} → {system} saved ({len(creds)} credential(s), encrypted)")


@installations_cli.command("disconnect")
@click.argument("key")
def disconnect_installation(key: str) -> None:
    """Purge an installation's secrets and cached data; its launches are refused afterwards."""
    with _store().session() as session:
        tenant = installations.find(session, key)
        if tenant is None:
            raise click.ClickException(f"no installation {key!r}")
        installations.disconnect(session, tenant.id)
    click.echo(f"{key}: disconnected")


@installations_cli.command("remove")
@click.argument("key")
@click.confirmation_option(prompt="Delete this installation and everything it owns?")
def remove_installation(key: str) -> None:
    """Delete an installation entirely."""
    with _store().session() as session:
        tenant = installations.find(session, key)
        if tenant is None:
            raise click.ClickException(f"no installation {key!r}")
        installations.remove(session, tenant.id)
    click.echo(f"{key}: removed")
