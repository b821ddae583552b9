"""Operator commands: `flask --app app truth|sandbox|db|installations …`."""

from __future__ import annotations

import json
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
    app.cli.add_command(sandbox_cli)
    app.cli.add_command(db_cli)
    app.cli.add_command(installations_cli)


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
        rows = session.scalars(select(Installation).order_by(Installation.id)).all()
    if not rows:
        click.echo("no installations", err=True)
        sys.exit(0)
    for inst in rows:
        click.echo(f"{inst.key:<30} {inst.host:<11} {inst.status:<10} {inst.name}")
