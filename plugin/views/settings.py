"""An installation's settings page, for any helpdesk host: features, connections, disconnect.

Admins arrive signed in by their helpdesk's own flow (for Zendesk: /zendesk/install); the
connection forms are built from the connector descriptors, and each connection is checked
against the vendor's live API before it is saved. Secrets are never shown back.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from marshmallow import ValidationError

from .. import insights
from ..actions.audit import CSV_COLUMNS, AuditLog, csv_line, parse_day, to_csv
from ..connectors.base import ConnectorConfig
from ..connectors.registry import CONNECTORS
from ..installations import DEFAULT_FEATURES, Tenant
from ..tenant_settings import SETTINGS, Setting, as_changes, current, validate_changes
from ..upstream_urls import check_upstream_url
from .admin import check_csrf, csrf_token, require_admin
from .context import bind_host, db, repo

log = logging.getLogger(__name__)
bp = Blueprint("settings", __name__, url_prefix="/<host_name>/settings")

FEATURE_LABELS = {
    "pos_source": "Ask the shop / store POS as a fourth source",
    "post_notes": "Let agents post the summary as an internal note",
    "add_tags": "Let agents tag tickets with the flags found",
    "refunds": "Let agents refund at the payment processor (roles and caps below)",
    "cancel_refunds": "Let agents cancel a refund flagged as a duplicate or over-refund (while the "
                      "processor allows it)",
    "draft_reply": "Let agents draft their reply to the customer from the record (never sent by the app)",
    "resolve_ticket": "Let agents resolve the ticket from the record (ticket changes per outcome below)",
    "erp_return_authorizations": "Let agents create the ERP return authorization for a portal "
                                 "return the ERP lacks (zone 1)",
    "erp_item_receipts": "Let agents receive a store return into ERP inventory at the store's "
                         "location (zone 3)",
}


bind_host(bp)


@bp.after_request
def _headers(resp):
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = (
        "frame-ancestors 'none'; default-src 'self'; style-src 'self'; form-action 'self' https:")
    return resp


def _tenant_or_404(key: str | None) -> Tenant:
    tenant = repo().find(key) if key else None
    if tenant is None or tenant.host != g.host.name:
        abort(404, description=f"No such {g.host.title} installation.")
    return tenant


def _back(tenant: Tenant):
    return redirect(url_for("settings.page", installation=tenant.key))


@bp.get("")
def page():
    """Features, settings and upstream connections for one installation (admins only)."""
    tenant = _tenant_or_404(request.args.get("installation"))
    admin = require_admin(tenant)
    sources = []
    for d in CONNECTORS.values():
        stored = tenant.connections.get(d.source.value)
        mine = stored is not None and stored.system == d.system
        sources.append({"descriptor": d, "values": stored.options if mine and stored else {},
                        "base_url": stored.base_url if mine and stored else "",
                        "configured": mine})
    return render_template("settings/page.html", page="settings", host=g.host, tenant=tenant,
                           admin=admin, features=tenant.features, feature_labels=FEATURE_LABELS,
                           sources=sources, settings=current(tenant.settings), setting_sections=_sections(),
                           csrf=csrf_token(), connected=g.host.api(tenant) is not None,
                           account=g.host.account_label(tenant),
                           setup_url=g.host.setup_url(tenant, request.host_url))


def _sections() -> dict[str, list[tuple[str, Setting]]]:
    """The settings grouped as the page shows them, in their order."""
    out: dict[str, list[tuple[str, Setting]]] = {}
    for name, spec in SETTINGS.items():
        out.setdefault(spec.section, []).append((name, spec))
    return out


@bp.post("/features")
def save_features():
    check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    require_admin(tenant)
    features = {name: request.form.get(name) == "on" for name in DEFAULT_FEATURES | FEATURE_LABELS}
    repo().update_settings(tenant.id, {"features": features})
    flash("Settings saved.")
    return _back(tenant)


@bp.post("/options")
def save_options():
    """The installation's own settings (prefix, order-number shape, time zone, windows)."""
    check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    require_admin(tenant)
    # An empty box keeps what was saved, except where empty is itself a value (no status).
    raw = {name: request.form[name].strip() for name, spec in SETTINGS.items()
           if name in request.form and (spec.blank_ok or request.form[name].strip() != "")}
    try:
        values = validate_changes(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{SETTINGS[k].help if k in SETTINGS else k}: {' '.join(map(str, v))}"
                             for k, v in sorted(exc.messages.items()))
        flash(f"Not saved — {problems}")
        return _back(tenant)
    repo().update_settings(tenant.id, as_changes(values))
    flash("Settings saved.")
    return _back(tenant)


@bp.post("/connections/<system>")
def save_source(system: str):
    """Store one upstream's credentials after checking them against the live API."""
    check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    require_admin(tenant)
    d = CONNECTORS.get(system)
    if d is None:
        abort(404)
    creds = {f.name: (request.form.get(f.name) or "").strip() for f in d.credentials}
    base_url = (request.form.get("base_url") or "").strip()
    options = {f.name: (request.form.get(f.name) or "").strip() for f in d.options}
    options = {k: v for k, v in options.items() if v}
    try:
        base_url = check_upstream_url(d.title, d.hosts, base_url, current_app.config)
    except ValueError as exc:
        flash(f"{d.title}: not saved — {exc}")
        return _back(tenant)
    http = current_app.extensions["order_truth"].session
    message = d.check(ConnectorConfig(base_url=base_url, credentials=creds, options=options), http)
    if message:
        flash(f"{d.title}: not saved — {message}")
    else:
        repo().save_connection(tenant.id, source=d.source.value, system=system,
                               base_url=base_url, credentials=creds, options=options)
        flash(f"{d.title}: connected and saved.")
    return _back(tenant)


@bp.post("/disconnect")
def disconnect():
    """Uninstall: purge secrets and cached data; later launches are refused."""
    check_csrf()
    tenant = _tenant_or_404(request.form.get("installation"))
    admin = require_admin(tenant)
    repo().disconnect(tenant.id)
    session.pop("admin", None)
    log.info("installation %s disconnected by %s user %s", tenant.key, g.host.title,
             admin["user_id"])
    return render_template("settings/page.html", page="disconnected", host=g.host, tenant=tenant,
                           account=g.host.account_label(tenant), csrf=csrf_token(), admin=None)



# The audit page shows the newest entries; the download has them all.
AUDIT_PAGE_ROWS = 500
AUDIT_DEFAULT_DAYS = 30


def _audit_window() -> tuple[datetime, datetime | None, str, str]:
    """The days asked for (since included, until excluded), defaulting to the last 30."""
    since_text = (request.args.get("since") or "").strip()
    until_text = (request.args.get("until") or "").strip()
    try:
        since = parse_day(since_text) if since_text else \
            parse_day((datetime.now(UTC) - timedelta(days=AUDIT_DEFAULT_DAYS)).strftime("%Y-%m-%d"))
        until = parse_day(until_text) if until_text else None
    except ValueError as exc:
        abort(400, description=str(exc))
    if until is not None and until <= since:
        abort(400, description="The day to stop before must come after the first day.")
    return since, until, since.strftime("%Y-%m-%d"), until_text


@bp.get("/audit")
def audit_page():
    """What agents did from the sidebar, newest first (admins only)."""
    tenant = _tenant_or_404(request.args.get("installation"))
    admin = require_admin(tenant)
    since, until, since_text, until_text = _audit_window()
    rows = AuditLog(db()).entries(installation_id=tenant.id, since=since, until=until,
                                  newest_first=True, limit=AUDIT_PAGE_ROWS + 1)
    return render_template("settings/audit.html", host=g.host, tenant=tenant, admin=admin,
                           account=g.host.account_label(tenant), rows=rows[:AUDIT_PAGE_ROWS],
                           more=len(rows) > AUDIT_PAGE_ROWS, limit=AUDIT_PAGE_ROWS,
                           since=since_text, until=until_text, columns=CSV_COLUMNS)


@bp.get("/audit.csv")
def audit_download():
    """The same entries as `flask --app app audit export`, oldest first, as a CSV file."""
    tenant = _tenant_or_404(request.args.get("installation"))
    require_admin(tenant)
    since, until, since_text, until_text = _audit_window()
    entries = AuditLog(db()).entries(installation_id=tenant.id, since=since, until=until)
    name = f"order-truth-audit-{since_text}{'-to-' + until_text if until_text else ''}.csv"
    return Response("".join(to_csv(entries)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


INSIGHT_DAYS = 30


def _insight_window() -> tuple[date, date]:
    since, until, _since_text, _until_text = _audit_window()
    end = (until or datetime.now(UTC) + timedelta(days=1)).date()
    if (end - since.date()).days > 366:
        abort(400, description="Ask for a year at most.")
    return since.date(), end


def _insights_report(tenant: Tenant) -> insights.Report:
    tally = current_app.extensions["insights"]
    try:
        tally.flush(db())  # this process's latest counts, before reading
    except Exception:
        log.warning("insight counts not written before the report", exc_info=True)
    since, until = _insight_window()
    return insights.report(db(), tenant.id, since, until)


@bp.get("/insights")
def insights_page():
    """What the sidebar found and saved, per day, for support and finance leads (admins)."""
    tenant = _tenant_or_404(request.args.get("installation"))
    admin = require_admin(tenant)
    rep = _insights_report(tenant)
    total = rep.total()
    peak = max([d.lookups for d in rep.days] + [1])
    return render_template("settings/insights.html", host=g.host, tenant=tenant, admin=admin,
                           account=g.host.account_label(tenant), report=rep, total=total,
                           zones=rep.by_zone(), peak=peak, minutes=insights.MINUTES_SAVED,
                           reasons=insights.PREVENTED_REASONS, zone_of=insights.zone_of,
                           since=rep.days[0].day if rep.days else "",
                           until=request.args.get("until", ""))


@bp.get("/insights.csv")
def insights_download():
    """The same figures as rows of (day, measure, zone, count): no customer data."""
    tenant = _tenant_or_404(request.args.get("installation"))
    require_admin(tenant)
    rep = _insights_report(tenant)
    lines = [csv_line(insights.CSV_COLUMNS)] + [csv_line(r) for r in insights.csv_rows(rep)]
    name = f"order-truth-insights-{rep.days[0].day if rep.days else 'none'}.csv"
    return Response("".join(lines), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
