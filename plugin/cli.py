"""Operator commands: `flask --app app truth|settings|connectors|installations|db|outbox|audit …`."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from .connectors.registry import CONNECTORS
from .core.orderid import InvalidOrderId, parse_order_id
from .core.serialize import truth_to_dict
from .installations import HELPDESK, Installations, Tenant


def register(app: Flask) -> None:
    for command in (truth, settings_cli, connectors_cli, db_cli, installations_cli, outbox_cli,
                    audit_cli):
        app.cli.add_command(command)
    try:
        from .sandbox.cli import sandbox_cli
    except ImportError:  # installed without the optional sandbox package
        pass
    else:
        app.cli.add_command(sandbox_cli)
    for host in app.extensions["hosts"].values():
        group = host.cli()
        if group is not None:
            app.cli.add_command(group)


def _store():
    return current_app.extensions["store"]


@contextmanager
def _repo() -> Iterator[Installations]:
    with _store().session() as session:
        yield Installations(session, current_app.extensions["secret_box"])


def _find(repo: Installations, key: str | None) -> Tenant:
    key = key or repo.default_key(current_app.config)
    tenant = repo.find(key) if key else None
    if tenant is None:
        raise click.ClickException(f"no installation {key!r}; see `flask installations list`")
    return tenant


@click.command("truth")
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Print the merged record as JSON.")
@click.option("--installation", default=None, help="Installation key (default: the default one).")
@click.option("--refresh", is_flag=True, help="Ignore cached source answers.")
@with_appcontext
def truth(order_id: str, as_json: bool, installation: str | None, refresh: bool) -> None:
    """Print the merged record for ORDER_ID."""
    with _repo() as repo:
        tenant = _find(repo, installation)
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


def _tenant_for(key: str | None) -> Tenant:
    with _repo() as repo:
        return _find(repo, key)


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
        shown = "(server default)" if value is None else value
        click.echo(f"{name:<36} {shown!s:<24} {SETTINGS[name].help}")


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
    with _repo() as repo:
        repo.update_settings(tenant.id, as_changes(loaded))
    click.echo(f"{tenant.key}: {name} = {loaded[name]}")


connectors_cli = AppGroup("connectors", help="The connectors this build knows (their descriptors).")


@connectors_cli.command("list")
def connectors_list() -> None:
    """One line per connector: system, source role, hosts, credentials."""
    for d in CONNECTORS.values():
        click.echo(f"{d.system:<18} {d.source.value:<10} {', '.join(d.hosts):<30} "
                   f"{', '.join(f.name for f in d.credentials)}")


@connectors_cli.command("docs")
def connectors_docs() -> None:
    """Print docs/connectors.md, generated from the descriptors."""
    from .connectors.docs import render

    click.echo(render(), nl=False)


db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
def upgrade() -> None:
    """Apply all migrations (run once per release for PostgreSQL)."""
    from .app import seed_installations

    store = _store()
    store.migrate()
    seed_installations(current_app)  # type: ignore[arg-type]
    click.echo(f"database at head ({store.engine.url.render_as_string(hide_password=True)})")


installations_cli = AppGroup("installations", help="Installations (tenants).")


@installations_cli.command("list")
def list_installations() -> None:
    """List installations."""
    with _repo() as repo:
        rows = [(inst.key, inst.host, inst.status,
                 ",".join(sorted(c.source for c in inst.connections)), inst.name)
                for inst in repo.all()]
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
    """Register (or reactivate) a Zendesk installation (same as `flask zendesk add-installation`)."""
    from .hosts.zendesk.host import register as register_zendesk

    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", subdomain):
        raise click.BadParameter("not a Zendesk subdomain", param_hint="--subdomain")
    if not installation_id.isdigit():
        raise click.BadParameter("must be numeric", param_hint="--installation-id")
    with _repo() as repo:
        tenant = register_zendesk(repo, subdomain, installation_id, app_id=app_id,
                                  base_url=base_url)
    click.echo(tenant.key)


@installations_cli.command("configure")
@click.argument("key")
@click.option("--source", required=True,
              type=click.Choice(["portal", "processor", "erp", "pos", HELPDESK]))
@click.option("--system", required=True,
              help=f"{', '.join(CONNECTORS)}, or the helpdesk (zendesk) for --source helpdesk.")
@click.option("--base-url", default="", help="Vendor API base URL (blank: vendor default).")
@click.option("--credential", "credentials", multiple=True, metavar="NAME=VALUE",
              help="Repeat per credential; a value of '-' is read from standard input.")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE")
def configure(key: str, source: str, system: str, base_url: str, credentials: tuple[str, ...],
              options: tuple[str, ...]) -> None:
    """Store one connection for an installation (credentials encrypted at rest)."""
    if source != HELPDESK and (system not in CONNECTORS
                               or CONNECTORS[system].source.value != source):
        raise click.BadParameter(f"{system!r} is not a {source} connector", param_hint="--system")
    creds = {}
    for item in credentials:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--credential")
        creds[name] = sys.stdin.readline().strip() if value == "-" else value
    opts = dict(o.partition("=")[::2] for o in options)
    with _repo() as repo:
        tenant = _find(repo, key)
        repo.save_connection(tenant.id, source=source, system=system, base_url=base_url,
                             credentials=creds, options=opts)
    click.echo(f"{key}: {source} → {system} saved ({len(creds)} credential(s), encrypted)")


@installations_cli.command("disconnect")
@click.argument("key")
def disconnect_installation(key: str) -> None:
    """Purge an installation's secrets and cached data; its launches are refused afterwards."""
    with _repo() as repo:
        repo.disconnect(_find(repo, key).id)
    click.echo(f"{key}: disconnected")


@installations_cli.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret under the first key of ENCRYPTION_KEY (new,old)."""
    from .store.crypto import SecretBoxError
    from .store.rotate import rotate_all

    with _store().session() as session:
        try:
            counts = rotate_all(session, current_app.extensions["secret_box"])
        except SecretBoxError as exc:
            session.rollback()
            raise click.ClickException(f"{exc}; nothing was changed (is the old key still "
                                       "listed after the new one?)") from None
    # Processes keep decrypted copies keyed by revision; sealing anew changes no secret.
    click.echo(", ".join(f"{n} {table}" for table, n in counts.items()) +
               " re-encrypted under the newest key")


@installations_cli.command("remove")
@click.argument("key")
@click.confirmation_option(prompt="Delete this installation and everything it owns?")
def remove_installation(key: str) -> None:
    """Delete an installation entirely."""
    with _repo() as repo:
        repo.remove(_find(repo, key).id)
    click.echo(f"{key}: removed")


outbox_cli = AppGroup("outbox", help="Writes to helpdesk tickets that are queued or failed.")


@outbox_cli.command("retry")
@click.option("--host", "host_name", default=None, help="Only this helpdesk's installations.")
def outbox_retry(host_name: str | None) -> None:
    """Retry ticket notes and tags whose earlier attempts failed (safe to run from cron)."""
    click.echo(f"{retry_pending_writes(host_name)} pending write(s) completed")


def retry_pending_writes(host_name: str | None = None) -> int:
    """Retry due writes through each installation's own helpdesk, as the agent who asked."""
    from .connectors.base import UpstreamError
    from .hosts.actions import retry_pending
    from .hosts.agents import Agents, SignInRequired

    hosts = current_app.extensions["hosts"]
    with _repo() as repo:
        agents = Agents(repo.session, current_app.extensions["secret_box"])

        def api_for(action):
            tenant = repo.get(action.installation_id)
            if tenant is None or not tenant.active or tenant.host not in hosts:
                return None
            if host_name is not None and tenant.host != host_name:
                return None
            host = hosts[tenant.host]
            agent = agents.get(tenant.id, action.actor_id)
            if agent is None:
                return None  # signed out or revoked: the write waits for them to sign in
            try:
                agent = agents.fresh(agent, lambda creds: host.refresh_agent(tenant, creds))
            except (SignInRequired, UpstreamError):
                return None  # signed out, or the helpdesk didn't answer: the next run tries
            return host.agent_api(tenant, agent.credentials)

        return retry_pending(repo.session, api_for)


audit_cli = AppGroup("audit", help="The audit trail of actions taken from the sidebar.")


@audit_cli.command("reconcile")
def audit_reconcile() -> None:
    """Settle refunds, cancellations, ERP documents, notes and tags, and ticket resolves left
    pending by a crash or a timeout: ask the processor, the ERP, the outbox or the helpdesk,
    never redo."""
    from sqlalchemy import select

    from .actions.audit import AuditLog
    from .actions.cancel import reconcile as reconcile_cancels
    from .actions.erp_fixes import reconcile as reconcile_erp_fixes
    from .actions.refunds import reconcile
    from .actions.resolve import reconcile as reconcile_resolves
    from .actions.ticket_writes import reconcile as reconcile_writes
    from .core.model import SourceName
    from .hosts.note import marker as note_marker
    from .installations import writing_client
    from .store.models import TicketAction

    service = current_app.extensions["order_truth"]
    with _repo() as repo:
        def client_for(entry, source):
            """The client that made (or would have made) the entry's write: none (left for
            later) when the installation has since moved to another system."""
            tenant = repo.get(entry.installation_id)
            return writing_client(tenant, service.config, service.session, source,
                                  entry.action, (entry.parameters or {}).get("processor")) \
                if tenant is not None else None

        processor_for = partial(client_for, source=SourceName.PROCESSOR)
        counts = reconcile(AuditLog(repo.session), processor_for)
        cancels = reconcile_cancels(AuditLog(repo.session), processor_for)
        documents = reconcile_erp_fixes(AuditLog(repo.session),
                                        partial(client_for, source=SourceName.ERP))

        hosts = current_app.extensions["hosts"]

        def reader_for(entry):
            tenant = repo.get(entry.installation_id)
            if tenant is None or not tenant.active or tenant.host not in hosts:
                return None
            return hosts[tenant.host].api(tenant)  # reading the ticket's notes only

        resolved = reconcile_resolves(AuditLog(repo.session), reader_for,
                                      lambda key: note_marker(f"note-{key}"))

        def outbox_row(entry):
            row = repo.session.scalar(select(TicketAction).where(
                TicketAction.installation_id == entry.installation_id,
                TicketAction.idempotency_key == entry.idempotency_key))
            if row is None or row.status not in ("done", "rejected"):
                return None  # not sent yet, or the outbox still retries it
            return row.status, tuple((row.payload or {}).get("tags", ()))

        writes = reconcile_writes(AuditLog(repo.session), outbox_row)
    click.echo(f"{counts['done']} found done at the processor, {counts['failed']} never reached "
               f"it, {counts['skipped']} left for later")
    click.echo(f"{cancels['done']} refund cancellations found done, {cancels['failed']} never "
               f"reached the processor, {cancels['skipped']} left for later")
    click.echo(f"{documents['done']} ERP documents found made, {documents['failed']} never "
               f"made, {documents['skipped']} left for later")
    click.echo(f"{writes['done']} notes and tag sets found written, {writes['failed']} refused "
               f"by the helpdesk, {writes['skipped']} left for later")
    click.echo(f"{resolved['done']} ticket resolves found applied, {resolved['failed']} never "
               f"applied, {resolved['skipped']} left for later")


def _day(value: str | None) -> datetime | None:
    from .actions.audit import parse_day

    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD") from None


@audit_cli.command("export")
@click.option("--since", required=True, help="First day (YYYY-MM-DD, UTC), included.")
@click.option("--until", default=None, help="Day to stop before (YYYY-MM-DD, UTC), excluded.")
@click.option("--installation", default=None, help="One installation's key (default: all).")
@click.option("--output", type=click.File("w"), default="-", help="CSV file (default: stdout).")
def audit_export(since: str, until: str | None, installation: str | None, output) -> None:
    """Write the audit trail as CSV (the same columns as the page's download)."""
    from .actions.audit import AuditLog, to_csv

    start = _day(since)
    assert start is not None
    with _repo() as repo:
        inst_id = _find(repo, installation).id if installation else None
        for line in to_csv(AuditLog(repo.session).entries(installation_id=inst_id, since=start,
                                                          until=_day(until))):
            output.write(line)
