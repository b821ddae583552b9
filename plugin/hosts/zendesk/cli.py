"""`flask zendesk package`: build the Zendesk app zip pointing at the URL this server is reachable at."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import click
from flask.cli import AppGroup

from .package import InvalidBaseUrl, InvalidPackage, build_package

zendesk_cli = AppGroup("zendesk", help="The Zendesk app: its package, installations and writes.")


@zendesk_cli.command("package", with_appcontext=False)
@click.option("--base-url", required=True,
              help="Where Zendesk reaches this server, e.g. https://truth.example.com (https, no path).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("dist/order-truth-zendesk.zip"), show_default=True, help="Zip file to write.")
@click.option("--allow-localhost", is_flag=True,
              help="Allow http://localhost:PORT for a development build.")
def package(base_url: str, output: Path, allow_localhost: bool) -> None:
    """Build the Zendesk app zip with its URLs pointing at --base-url."""
    try:
        path = build_package(base_url, output, allow_localhost=allow_localhost)
    except InvalidBaseUrl as exc:
        raise click.BadParameter(str(exc), param_hint="--base-url") from exc
    except InvalidPackage as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {path}")
    click.echo(f"ticket sidebar: {_sidebar_url(path)}")


def _sidebar_url(path: Path) -> str:
    """The ticket_sidebar URL recorded in the built package's manifest."""
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    sidebar = manifest["location"]["support"]["ticket_sidebar"]
    return sidebar["url"] if isinstance(sidebar, dict) else sidebar


@zendesk_cli.command("retry-pending")
def retry_pending() -> None:
    """Retry this helpdesk's ticket notes and tags whose earlier attempts failed (cron-safe)."""
    from ...cli import retry_pending_writes

    click.echo(f"{retry_pending_writes('zendesk')} pending write(s) completed")
