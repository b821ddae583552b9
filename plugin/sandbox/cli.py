"""`flask --app app sandbox …`: the sandbox's own commands."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

sandbox_cli = AppGroup("sandbox", help="The built-in sandbox of simulated upstreams.")


@sandbox_cli.command("scenarios")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def scenarios(as_json: bool) -> None:
    """List the seeded scenarios and their order IDs."""
    from .scenarios import SCENARIOS

    rows = [{"scenario": s.name, "order_id": s.order_number} for s in SCENARIOS]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for s in SCENARIOS:
        click.echo(f"{s.order_number:>6}  {s.name:<38} {s.title}")
