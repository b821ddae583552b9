"""The sidebar, for any helpdesk host: the signed launch, then the widget's session API.

URLs keep the host's name (/zendesk/sidebar, /zendesk/api/record …); the host behind it
verifies launches and talks to its helpdesk, everything else here is host-neutral.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import partial, wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask import session as flask_session

from ..actions import Outcome, Permission, Refused
from ..actions.audit import Actor, AuditLog
from ..actions.cancel import ACTION as CANCEL_ACTION
from ..actions.cancel import CANNOT_CANCEL, CancelPlan, RefundCanceller
from ..actions.cancel import candidates as cancel_candidates
from ..actions.cancel import execute as execute_cancel
from ..actions.cancel import permission as cancel_permission
from ..actions.cancel import plan as plan_cancel
from ..actions.erp_fixes import FEATURES as ERP_FIX_FEATURES
from ..actions.erp_fixes import ErpPlan, ErpWriter
from ..actions.erp_fixes import execute as execute_erp_fix
from ..actions.erp_fixes import fixes as erp_fixes
from ..actions.erp_fixes import permission as erp_permission
from ..actions.erp_fixes import plan as plan_erp_fix
from ..actions.outcomes import OUTCOMES
from ..actions.refunds import ACTION as REFUND_ACTION
from ..actions.refunds import REASONS as REFUND_REASONS
from ..actions.refunds import (
    RefundPlan,
    RefundPolicy,
    RefundProcessor,
    RefundRequest,
    check_policy,
    refundable_payments,
)
from ..actions.refunds import execute as execute_refund
from ..actions.refunds import plan as plan_refund
from ..actions.resolve import ResolvePlan, ResolvePolicy
from ..actions.resolve import check_policy as check_resolve_policy
from ..actions.resolve import execute as execute_resolve
from ..actions.resolve import plan as plan_resolve
from ..actions.resolve import this_round as resolve_round
from ..actions.ticket_writes import permission as write_permission
from ..actions.ticket_writes import settle as settle_write
from ..connectors.base import AuthError, NotFoundError, UpstreamError
from ..connectors.registry import descriptor
from ..core.model import OrderRef, SourceName
from ..core.money import Money, exponent
from ..core.orderid import InvalidOrderId, find_candidates, parse_order_id
from ..core.record import OrderTruth
from ..hosts import actions
from ..hosts.agents import (
    Agent,
    Agents,
    RememberTokens,
    SignInRequired,
    digest,
    pkce_challenge,
)
from ..hosts.base import Host, HostApi, HostTicket, LaunchRejected
from ..hosts.note import flag_tags, render_note
from ..hosts.note import marker as note_marker
from ..hosts.session import SessionRejected, csrf_ok
from ..insights import Tally
from ..installations import Tenant, connector_configs, writing_client
from ..service import Lookup, Overloaded
from .context import arrived, bind_host, db, release_db, repo, service

log = logging.getLogger(__name__)
bp = Blueprint("sidebar", __name__, url_prefix="/<host_name>")

_TICKET_ID = re.compile(r"[0-9]{1,20}")
_ACTION_KEY = re.compile(r"[A-Za-z0-9-]{8,64}")
# Stripe ids (pi_…, re_…) and Shopify gids (gid://shopify/OrderTransaction/…).
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_-]{3,100}|gid://shopify/[A-Za-z]{1,40}/[0-9]{1,20}")
_REFUND_ID = _PAYMENT_ID


def sessions():
    return current_app.extensions["sessions"]


bind_host(bp)


def frame_policy(host: Host, tenant: Tenant | None) -> str:
    """CSP that lets only this installation's helpdesk frame the response."""
    scripts = " ".join(["'self'", *host.script_sources(tenant)])
    return (f"frame-ancestors {host.frame_ancestors(tenant)}; default-src 'self'; "
            f"script-src {scripts}; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")


@bp.after_request
def _headers(resp):
    if "host" in g:
        resp.headers["Content-Security-Policy"] = frame_policy(g.host, g.get("tenant"))
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _refuse(reason: str, status: int):
    return render_template("sidebar/refused.html", reason=reason), status


@bp.post("/sidebar")
def sidebar():
    """The helpdesk POSTs its signed launch here; answer with the widget and a session."""
    host: Host = g.host
    try:
        launch = host.verify_launch(repo(), request)
    except LaunchRejected as exc:
        log.info("%s sidebar launch refused: %s", host.name, exc.reason)
        return _refuse(exc.reason, exc.status)
    tenant = repo().find(launch.installation_key)
    if tenant is None:
        # First signed launch of a private app: register it and point the admin to set-up.
        tenant = host.register(repo(), launch)
        if tenant is None:
            return _refuse(f"This {host.title} isn't registered with Order Truth.", 403)
        log.info("registered %s installation %s", host.name, launch.installation_key)
    g.tenant = tenant
    token, csrf = sessions().issue(tenant.id, tenant.key, tenant.generation)
    return render_template(
        "sidebar/page.html", host=host, tenant=tenant, session_token=token, csrf=csrf,
        connected=host.api(tenant) is not None, scripts=host.sidebar_scripts(tenant),
        setup_url=host.setup_url(tenant, request.host_url))


def session_required(view):
    """Bearer session from a verified launch; binds g.tenant to that installation only."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        try:
            sess = sessions().verify(token)
        except SessionRejected as exc:
            return jsonify(error={"code": "unauthorized", "message": str(exc)}), 401
        tenant = repo().get(sess.installation_id)
        if (tenant is None or tenant.key != sess.installation_key or tenant.host != g.host.name
                or tenant.generation != sess.generation or not tenant.active):
            return jsonify(error={"code": "unauthorized",
                                  "message": "This installation is no longer connected."}), 401
        if request.method == "POST" and not csrf_ok(sess, request.headers.get("X-CSRF-Token")):
            return jsonify(error={"code": "csrf", "message": "Missing or wrong CSRF token."}), 403
        g.tenant = tenant
        g.sidebar_session = sess
        return view(*args, **kwargs)

    return wrapper


def _ticket_id(raw: str | None) -> str:
    """The ticket id in one spelling ("0105" is ticket 105): keys and history depend on it."""
    if raw is None or not _TICKET_ID.fullmatch(raw):
        abort(400, description="A numeric ticket id is required.")
    return str(int(raw))


class Reread:
    """The ticket re-read in this installation's helpdesk, alongside the lookup and within
    the same deadline (counted from the request's arrival): a slow helpdesk is said, not
    waited out."""

    def __init__(self, tenant: Tenant, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        self.api = g.host.api(tenant)
        self.future = service().fanout.pool.submit(self.api.get_ticket, ticket_id) \
            if self.api is not None else None
        self.by = service().due(arrived(), tenant)

    def ticket(self) -> HostTicket | None:
        """The ticket, or None if it couldn't be read in time; NotFoundError if it isn't there."""
        if self.future is None:
            return None
        try:
            return self.future.result(timeout=max(0.05, self.by - time.monotonic()))
        except NotFoundError:
            raise
        except (UpstreamError, FutureTimeout) as exc:
            log.warning("could not re-read ticket %s in time: %s", self.ticket_id, exc)
            return None

    def ticket_or_404(self) -> HostTicket | None:
        try:
            return self.ticket()
        except NotFoundError:
            abort(404, description=f"That ticket isn't in this {g.host.title} account.")


def _start_lookup(tenant: Tenant) -> tuple[Lookup, str, HostApi | None, HostTicket | None]:
    """Validate the request, start the fan-out, and re-read the ticket while it runs."""
    ticket_id = _ticket_id(request.args.get("ticket_id"))
    order = parse_order_id(request.args.get("order_id"), tenant.order_name_prefix)
    release_db()
    lookup = service().begin(tenant, order, refresh=request.args.get("refresh") == "1",
                             arrived=arrived())
    reread = Reread(tenant, ticket_id)
    return lookup, ticket_id, reread.api, reread.ticket_or_404()


def _tally() -> Tally:
    return current_app.extensions["insights"]  # type: ignore[no-any-return]


def _count_lookup(truth: OrderTruth) -> None:
    """Counted for the insights page; written now and then, never failing the record."""
    tally = _tally()
    tally.lookup(g.tenant.id, truth)
    if tally.due():
        try:
            tally.flush(db())
        except Exception:
            log.warning("insight counts not written; kept for the next try", exc_info=True)


def _prevented(reason: str) -> None:
    _tally().prevented(g.tenant.id, reason)


def _render_record(lookup: Lookup, ticket_id: str, api: HostApi | None,
                   ticket: HostTicket | None) -> str:
    truth = lookup.finish()
    _count_lookup(truth)
    # What this ticket already got for this order: re-opening the ticket or pressing Refresh
    # must not make a second identical note one careless click away.
    history = actions.posted_notes(db(), installation_id=g.tenant.id, ticket_id=ticket_id,
                                   order_number=truth.order_number)
    # Writes go out as the signed-in agent (checked when they click), not the connection.
    features = g.tenant.features
    return render_template(
        "sidebar/_record.html", truth=truth, ticket_id=ticket_id,
        can_write=True, ticket_verified=ticket is not None or api is None,
        features=features, tags=flag_tags(truth), host_title=g.host.title,
        posted=history, refundable=refundable_payments(truth) if features.get("refunds") else [],
        cancellable=cancel_candidates(truth) if features.get("cancel_refunds") else [],
        erp_fixes=[f for f in erp_fixes(truth, store_inventory_lag=g.tenant.reconcile_settings
                                        .store_inventory_lag)
                   if features.get(ERP_FIX_FEATURES[f.action])],
        exponent=exponent)


@bp.get("/api/record")
@session_required
def record():
    """The merged record for the ticket's order, as the widget's HTML fragment."""
    try:
        lookup, ticket_id, api, ticket = _start_lookup(g.tenant)
    except InvalidOrderId as exc:
        return jsonify(error={"code": "invalid_order_id", "message": exc.reason}), 400
    return _render_record(lookup, ticket_id, api, ticket)


@bp.get("/api/record/stream")
@session_required
def record_stream():
    """The record in parts, one JSON object per line, as they become known.

    `start` (the frame: headline placeholder and every source "asking") at once, one
    `source` per source as it answers (or times out at the deadline), then `record` (flags,
    headline and sections), or `error` if building it failed. A fetch() stream rather than
    EventSource: the session travels in the Authorization header, which EventSource cannot
    send. The ticket is re-read alongside the sources, within the same deadline.
    """
    tenant: Tenant = g.tenant
    ticket_id = _ticket_id(request.args.get("ticket_id"))
    try:
        order = parse_order_id(request.args.get("order_id"), tenant.order_name_prefix)
    except InvalidOrderId as exc:
        return jsonify(error={"code": "invalid_order_id", "message": exc.reason}), 400
    release_db()
    lookup = service().begin(tenant, order, refresh=request.args.get("refresh") == "1",
                             arrived=arrived())
    reread = Reread(tenant, ticket_id)

    def parts() -> Iterator[str]:
        try:
            yield _line("start", html=render_template(
                "sidebar/_pending.html", order=lookup.order, sources=list(SourceName)))
            for source, report in lookup.sections():
                yield _line("source", source=source.value, html=render_template(
                    "widget/_source.html", source=source, report=report, truth=None))
            try:
                ticket = reread.ticket()
            except NotFoundError:
                yield _line("record", html=render_template(
                    "sidebar/_problem.html",
                    message=f"That ticket isn't in this {g.host.title} account."))
                return
            yield _line("record", html=_render_record(lookup, ticket_id, reread.api, ticket))
        except Exception:  # the status line has gone: say so in the stream, and log it
            log.exception("building the streamed record failed")
            yield _line("error", html=render_template(
                "sidebar/_problem.html", message="Something went wrong building this "
                                                 "record. Refresh to try again."))

    resp = Response(stream_with_context(parts()), mimetype="application/x-ndjson")
    resp.headers["X-Accel-Buffering"] = "no"  # let a buffering proxy pass each line at once
    return resp


def _line(kind: str, **fields: str) -> str:
    return json.dumps({"type": kind, **fields}) + "\n"


# Order IDs found in a ticket that are looked up before giving up (each is a full lookup).
MAX_TRIED = 3


@bp.post("/api/resolve-order")
@session_required
def resolve_order():
    """Which order a ticket is about: its Order ID field, else order numbers in its text.

    The server reads the ticket itself when Zendesk is connected (the browser's copy is used
    only when it can't). With several candidates it looks each up in turn and says which one
    it used; a single one is returned at once and the record says whether it exists.
    """
    tenant: Tenant = g.tenant
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error={"code": "bad_request", "message": "Expected a JSON object."}), 400
    ticket_id = _ticket_id(str(body.get("ticket_id") or ""))
    ticket = Reread(tenant, ticket_id).ticket_or_404()
    subject = ticket.subject if ticket else _text(body.get("subject"))
    description = ticket.description if ticket else _text(body.get("description"))
    candidates: list[tuple[str, str]] = []
    field = _text(body.get("field"))
    field_id = tenant.settings.get("order_id_field_id")
    if ticket is not None and isinstance(field_id, int) and field_id > 0:
        # The admin named the field here: its value as the helpdesk has it, not the browser's.
        value = ticket.custom_fields.get(str(field_id))
        field = value if isinstance(value, str) else ""
    if field.strip():
        candidates.append((field.strip(), "the ticket's Order ID field"))
    candidates += [(c.order_id, c.where) for c in find_candidates(
        [("the ticket subject", subject), ("the ticket description", description)],
        name_prefix=tenant.order_name_prefix, shape=tenant.order_id_shape)]
    tried: list[dict[str, str]] = []
    release_db()
    if len(candidates) == 1:
        # Nothing to choose between: the record (streamed next) says whether it exists.
        raw, where = candidates[0]
        try:
            return jsonify(order_id=parse_order_id(raw, tenant.order_name_prefix).number,
                           source=where, found=None, tried=tried)
        except InvalidOrderId:
            tried.append({"order_id": raw, "from": where, "result": "not an order ID"})
    for raw, where in candidates[:MAX_TRIED] if len(candidates) > 1 else ():
        try:
            order = parse_order_id(raw, tenant.order_name_prefix)
        except InvalidOrderId:
            tried.append({"order_id": raw, "from": where, "result": "not an order ID"})
            continue
        try:
            found = service().lookup(tenant, order, arrived=arrived()).found
        except Overloaded:  # the earlier candidates used up this request's time
            tried.append({"order_id": order.number, "from": where, "result": "not looked up"})
            break
        if found:
            return jsonify(order_id=order.number, source=where, found=True, tried=tried)
        tried.append({"order_id": order.number, "from": where, "result": "not found"})
    first = tried[0] if tried else None
    return jsonify(order_id=first["order_id"] if first else None,
                   source=first["from"] if first else None, found=False, tried=tried)


def _text(value: object, limit: int = 20000) -> str:
    return value[:limit] if isinstance(value, str) else ""


@bp.post("/api/tickets/<ticket_id>/actions")
@session_required
def ticket_action(ticket_id: str):
    """Post the summary note or the flag tags; the same key never writes twice."""
    tenant: Tenant = g.tenant
    ticket_id = _ticket_id(ticket_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error={"code": "bad_request", "message": "Expected a JSON object."}), 400
    kind = body.get("kind")
    key = str(body.get("key") or "")
    if kind not in ("note", "tags"):
        return jsonify(error={"code": "bad_request", "message": "kind must be note or tags."}), 400
    if not _ACTION_KEY.fullmatch(key):
        return jsonify(error={"code": "bad_request", "message": "A valid action key is required."}), 400
    try:
        order = parse_order_id(body.get("order_id"), tenant.order_name_prefix)
    except InvalidOrderId as exc:
        return jsonify(error={"code": "invalid_order_id", "message": exc.reason}), 400
    permission = write_permission(kind, tenant.features, tenant.settings)
    allowed = _allows(permission)
    try:
        permission.check_enabled()  # said first, signed in or not
        agent = _checked_agent(tenant, allowed)  # before any upstream call
        agent, api, _ticket = _acting_agent(tenant, ticket_id, agent)
        allowed(_actor(agent))  # the role as the helpdesk says it now
    except Refused as exc:
        return _refused(exc)
    action_key = f"{kind}-{key}"
    audit = AuditLog(db())
    entry, held = audit.begin(installation_id=tenant.id, actor=_actor(agent),
                              ticket_id=ticket_id, order_number=order.number, action=kind,
                              key=action_key, parameters={}, amount_minor=None, currency=None)

    def payload() -> dict:
        truth = service().lookup(tenant, order)
        if kind == "note":
            return {"body": render_note(truth, action_key)}
        return {"tags": flag_tags(truth)}

    result = actions.submit(db(), api, installation_id=tenant.id, ticket_id=ticket_id,
                            order_number=order.number, kind=kind, key=action_key,
                            payload_factory=payload, actor=(agent.host_user_id, agent.name))
    if held != "elsewhere":  # a repeat of a settled entry, or one another request holds
        settle_write(audit, entry, result.status, result.message, result.tags)
    if result.status == "done":
        # The ticket changed: the next look at this order starts from the sources.
        service().invalidate(tenant, order)
    status = {"done": 200, "in_progress": 202, "failed": 502, "rejected": 422}[result.status]
    return jsonify(status=result.status, message=result.message, tags=list(result.tags)), status


# -- agents sign in to their helpdesk, so writes go out as them (see hosts/agents.py)


def agents() -> Agents:
    return Agents(db(), current_app.extensions["secret_box"])


def _remember() -> RememberTokens:
    return current_app.extensions["agent_remember"]  # type: ignore[no-any-return]


def _refused(exc: Refused):
    return jsonify(error={"code": exc.code, "message": exc.message}), exc.status


def _sign_in_required(message: str) -> Refused:
    return Refused(401, "agent_sign_in_required", message)


def _signed_in_agent(tenant: Tenant) -> Agent:
    """The agent who signed in from this sidebar (from our store: no upstream call)."""
    sess = g.sidebar_session
    title = g.host.title
    if sess.agent_id is None:
        raise _sign_in_required(f"Sign in to {title} once, so what you do here goes out as "
                                f"you, with your own {title} permissions.")
    agent = agents().get(tenant.id, sess.agent_id)
    if agent is None or agent.stamp != sess.agent_grant:
        raise _sign_in_required(f"You signed out of {title} here, or your sign-in was revoked; "
                                "sign in again.")
    return agent


def _acting_agent(tenant: Tenant, ticket_id: str, agent: Agent | None = None, *,
                  strict: bool = False) -> tuple[Agent, HostApi, HostTicket | None]:
    """The signed-in agent of this sidebar, the helpdesk API acting as them, and the ticket
    as they see it (None if the helpdesk didn't answer and `strict` is off).

    Checked before anything is recorded or written: the agent must have signed in, and the
    helpdesk must let *them* see the ticket (it then applies their rights to a ticket write
    too). `strict`: if the helpdesk can't be asked, refuse (money moves outside it).
    """
    title = g.host.title
    agent = agent or _signed_in_agent(tenant)
    try:
        agent = agents().fresh(agent, lambda creds: g.host.refresh_agent(tenant, creds))
    except SignInRequired as exc:
        raise _sign_in_required(exc.reason) from None
    except UpstreamError as exc:
        log.warning("could not refresh the sign-in of agent %s: %s", agent.host_user_id, exc)
        raise Refused(503, "helpdesk_unavailable", f"{title} didn't answer just now; "
                                                        "try again in a moment.") from None
    api = g.host.agent_api(tenant, agent.credentials)
    ticket = None
    try:
        ticket = api.get_ticket(ticket_id)
    except NotFoundError:
        raise Refused(404, "not_found",
                           f"That ticket isn't in this {title} account.") from None
    except AuthError as exc:
        if exc.http_status == 401:
            agents().sign_out(tenant.id, agent.host_user_id)
            raise _sign_in_required(f"{title} no longer accepts your sign-in; "
                                    "sign in again.") from None
        raise Refused(403, "forbidden_by_host",
                           f"{title} doesn't let {agent.name or 'you'} update ticket "
                           f"{ticket_id}, so nothing was written.") from None
    except UpstreamError as exc:
        log.warning("could not check ticket %s as agent %s: %s", ticket_id,
                    agent.host_user_id, exc)
        if strict:
            raise Refused(503, "helpdesk_unavailable", f"{title} didn't answer just now, "
                                                            "so nothing was done; try again.") \
                from None
        # A ticket write: the helpdesk still applies the agent's rights to the write itself.
    return agent, api, ticket


def _session_answer(tenant: Tenant, agent: Agent | None) -> dict[str, object]:
    """A new sidebar session (naming the agent, if any), and the token that resumes it."""
    token, csrf = sessions().issue(
        tenant.id, tenant.key, tenant.generation,
        agent_id=agent.host_user_id if agent else None, agent_name=agent.name if agent else "",
        agent_grant=agent.stamp if agent else None)
    answer: dict[str, object] = {"session": token, "csrf": csrf, "agent": None}
    if agent is not None:
        answer["agent"] = {"id": agent.host_user_id, "name": agent.name}
        answer["remember"] = _remember().issue(agent)
    return answer


@bp.post("/api/agent/sign-in")
@session_required
def agent_sign_in():
    """Start a sign-in for this sidebar: the pop-up's start URL, and the claim to collect it."""
    tenant: Tenant = g.tenant
    redirect_uri = url_for("sidebar.agent_callback", _external=True)
    state, claim, challenge = agents().start(tenant.id, redirect_uri, _browser())
    if g.host.agent_sign_in_url(tenant, state=state, code_challenge=challenge,
                                redirect_uri=redirect_uri) is None:
        return jsonify(error={"code": "sign_in_unavailable", "message": (
            f"Signing in to {g.host.title} needs this server's OAuth client set up; "
            "ask your admin.")}), 409
    return jsonify(start_url=url_for("sidebar.agent_start", state=state, _external=True),
                   claim=claim)


@bp.get("/agent/start")
def agent_start():
    """The pop-up's first page: tie the sign-in to this browser, then go to the helpdesk."""
    state = request.args.get("state") or ""
    pending = agents().pending(state) if len(state) < 100 else None
    tenant = repo().get(pending.installation_id) if pending else None
    if pending is None or tenant is None or tenant.host != g.host.name:
        return _signed_in_page("This sign-in link expired or was already used. Close this "
                               "window and sign in again from the sidebar.", 400)
    flask_session["agent_sign_in"] = digest(state)
    url = g.host.agent_sign_in_url(tenant, state=state,
                                   code_challenge=pkce_challenge(pending.verifier),
                                   redirect_uri=pending.redirect_uri)
    if url is None:
        return _signed_in_page("Signing in isn't set up on this server.", 409)
    return redirect(url)


@bp.get("/agent/callback")
def agent_callback():
    """Where the helpdesk returns the agent: keep their tokens and who they are."""
    state = request.args.get("state") or ""
    pending = agents().pending(state) if len(state) < 100 else None
    started_here = flask_session.pop("agent_sign_in", None)
    if pending is None or not started_here or not hmac.compare_digest(
            str(started_here).encode(), digest(state).encode()):
        return _signed_in_page("This sign-in expired, was already used, or was started in "
                               "another browser. Close this window and sign in again from "
                               "the sidebar.", 400)
    tenant = repo().get(pending.installation_id)
    if tenant is None or tenant.host != g.host.name or not tenant.active:
        return _signed_in_page("This installation is no longer connected.", 400)
    if not hmac.compare_digest(pending.browser.encode(), _browser().encode()):
        # Finished in another browser than the sidebar that started it: someone may have
        # sent this link to get a sign-in as whoever opens it.
        agents().fail(pending, "The sign-in was finished in another browser; start again.")
        log.warning("agent sign-in for %s finished from another browser; refused", tenant.key)
        return _signed_in_page("This sign-in was started in another browser. If you didn't "
                               "just click \"Sign in\" in your own Order Truth sidebar, "
                               "someone may be trying to act as you: close this window.", 403)
    if request.args.get("error"):
        agents().fail(pending, f"The {g.host.title} sign-in was cancelled.")
        return _signed_in_page(f"The {g.host.title} sign-in was cancelled. You can close "
                               "this window.", 403)
    try:
        user, credentials = g.host.finish_agent_sign_in(
            tenant, code=request.args.get("code", ""), verifier=pending.verifier,
            redirect_uri=pending.redirect_uri)
        agent = agents().finish(pending, user, credentials)
    except UpstreamError as exc:
        log.warning("agent sign-in for %s failed: %s", tenant.key, exc)
        agents().fail(pending, f"{g.host.title} refused the sign-in: {exc}")
        return _signed_in_page(f"{g.host.title} refused the sign-in: {exc}", 502)
    except SignInRequired as exc:
        return _signed_in_page(exc.reason, 403)
    return _signed_in_page(f"Signed in to {g.host.title} as {agent.name}. You can close this "
                           "window and go back to the ticket.", 200, done=True)


def _browser() -> str:
    """Which browser a request comes from (its address and user agent), hashed."""
    return digest(f"{request.remote_addr or ''}|{request.headers.get('User-Agent', '')}")


def _signed_in_page(message: str, status: int, *, done: bool = False):
    return render_template("sidebar/signed_in.html", message=message, done=done), status


@bp.post("/api/agent/claim")
@session_required
def agent_claim():
    """What became of this sidebar's sign-in; once finished, a session that names the agent."""
    body = request.get_json(silent=True)
    claim = body.get("claim") if isinstance(body, dict) else None
    if not isinstance(claim, str) or not 8 <= len(claim) <= 100:
        return jsonify(error={"code": "bad_request", "message": "A sign-in claim is required."}), 400
    found = agents().claim(g.tenant.id, claim)
    if found.status == "pending":
        return jsonify(status="pending"), 202
    if found.status == "refused" or found.agent is None:
        return jsonify(error={"code": "sign_in_refused", "message": found.reason}), 403
    return jsonify(status="done", **_session_answer(g.tenant, found.agent))


@bp.post("/api/agent/resume")
@session_required
def agent_resume():
    """A later sidebar in the same browser picks up the agent's sign-in (no pop-up)."""
    body = request.get_json(silent=True)
    token = body.get("remember") if isinstance(body, dict) else None
    found = _remember().verify(token) if isinstance(token, str) and len(token) < 2000 else None
    agent = agents().get(g.tenant.id, found[1]) if found and found[0] == g.tenant.id else None
    if agent is None or found is None or agent.stamp != found[2]:
        return jsonify(error={"code": "agent_sign_in_required",
                              "message": f"Sign in to {g.host.title} to write to tickets."}), 401
    return jsonify(status="done", **_session_answer(g.tenant, agent))


@bp.post("/api/agent/sign-out")
@session_required
def agent_sign_out():
    """Forget this agent's sign-in here (their remember tokens stop working)."""
    sess = g.sidebar_session
    if sess.agent_id is not None:
        agents().sign_out(g.tenant.id, sess.agent_id)
    return jsonify(status="done", **_session_answer(g.tenant, None))


# -- refunds at the processor (plugin/actions/refunds.py)


def _action_body(tenant: Tenant) -> tuple[dict[str, Any], OrderRef]:
    """An action's JSON object and the order it names (400 otherwise)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refused(400, "bad_request", "Expected a JSON object.")
    try:
        return body, parse_order_id(body.get("order_id"), tenant.order_name_prefix)
    except InvalidOrderId as exc:
        raise Refused(400, "invalid_order_id", exc.reason) from None


def _refund_request(tenant: Tenant, ticket_id: str) -> tuple[RefundRequest, OrderRef, str]:
    body, order = _action_body(tenant)
    payment_id, amount = body.get("payment_id"), body.get("amount_minor")
    currency, reason = body.get("currency"), body.get("reason") or None
    if not isinstance(payment_id, str) or not _PAYMENT_ID.fullmatch(payment_id):
        raise Refused(400, "bad_request", "Which payment to refund (payment_id) is required.")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < 10**12:
        raise Refused(400, "bad_request", "The amount (amount_minor, in cents) must be a "
                                          "whole number above zero.")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise Refused(400, "bad_request", "The currency (three letters) is required.")
    if reason is not None and reason not in REFUND_REASONS:
        raise Refused(400, "bad_request", f"reason must be one of {', '.join(REFUND_REASONS)}.")
    return (RefundRequest(ticket_id, order.number, payment_id, amount, reason), order,
            currency.upper())


def _refund_processor(tenant: Tenant, action: str = REFUND_ACTION) -> Any:
    cannot = {REFUND_ACTION: "{title} doesn't take refunds from the sidebar.",
              CANCEL_ACTION: CANNOT_CANCEL}[action]
    return _writing_client(tenant, SourceName.PROCESSOR, action, "No payment processor is "
                           "connected.", cannot)


def _writing_client(tenant: Tenant, source: SourceName, action: str, none: str,
                    cannot: str) -> Any:
    """The client `action` writes through; 409 with `none` when the source isn't connected,
    or `cannot` (with the connected system's {title}) when it can't do this."""
    client = writing_client(tenant, service().config, service().session, source, action)
    if client is None:
        connected = connector_configs(tenant, service().config).get(source)
        if connected is None:
            raise Refused(409, "not_connected", none)
        raise Refused(409, "unsupported", cannot.format(title=descriptor(connected[0]).title))
    return client


def _allows(permission: Permission) -> Callable[[Actor], None]:
    """The check an action's agent must pass (turned on, their role allowed)."""
    return lambda actor: permission.check(actor.role)


def _actor(agent: Agent) -> Actor:
    return Actor(agent.host_user_id, agent.name, agent.role)


def _checked_agent(tenant: Tenant, check: Callable[[Actor], None]) -> Agent:
    """The signed-in agent, allowed by `check` as we know them: before any upstream call."""
    agent = _signed_in_agent(tenant)
    check(_actor(agent))
    return agent


@dataclass(frozen=True)
class _Acting:
    """Who acts, as the helpdesk knows them now, through which API, on which ticket."""

    agent: Agent
    actor: Actor
    api: HostApi
    ticket: HostTicket | None


def _as_host_says(tenant: Tenant, ticket_id: str, agent: Agent,
                  check: Callable[[Actor], None]) -> _Acting:
    """The agent as the helpdesk knows them now (they may see the ticket; their role today,
    not at sign-in: a demoted admin isn't one here), checked again by `check`."""
    agent, api, ticket = _acting_agent(tenant, ticket_id, agent, strict=True)
    try:
        user = api.current_user()
    except UpstreamError:
        raise Refused(503, "helpdesk_unavailable", f"{g.host.title} didn't answer just now, "
                                                   "so nothing was done; try again.") from None
    if user.id != agent.host_user_id:
        raise _sign_in_required("Your sign-in no longer matches you; sign in again.")
    if user.role != agent.role:
        agent = agents().set_role(agent, user.role)
    actor = _actor(agent)
    check(actor)
    return _Acting(agent, actor, api, ticket)


@dataclass(frozen=True)
class _PlannedRefund:
    """Everything checked before the refund call, and what the call needs."""

    order: OrderRef
    agent: Agent
    actor: Actor
    api: HostApi
    audit: AuditLog
    processor: RefundProcessor
    policy: RefundPolicy
    plan: RefundPlan


def _refund_planned(ticket_id: str) -> _PlannedRefund:
    """Who, allowed, capped, the ticket theirs, the plan: all before the refund call."""
    tenant: Tenant = g.tenant
    ticket_id = _ticket_id(ticket_id)
    req, order, currency = _refund_request(tenant, ticket_id)
    audit = AuditLog(db())
    policy = RefundPolicy.of(tenant.features, tenant.settings)

    def allowed(actor: Actor) -> None:
        check_policy(policy, actor, Money(req.amount_minor, currency),
                     audit.spent_today(tenant.id, actor.id, REFUND_ACTION, currency))

    # Allowed at all, for this role, within the caps: decided before any upstream call.
    agent = _checked_agent(tenant, allowed)
    processor = _refund_processor(tenant)
    acting = _as_host_says(tenant, ticket_id, agent, allowed)
    truth = service().lookup(tenant, order, refresh=True)  # never plan money on a cached record
    refund_plan = plan_refund(truth, req, tenant.id)
    if refund_plan.amount.currency != currency:
        raise Refused(409, "currency_changed", f"This payment is in "
                                               f"{refund_plan.amount.currency}, not {currency}.")
    return _PlannedRefund(order, acting.agent, acting.actor, acting.api, audit, processor,
                          policy, refund_plan)


@bp.post("/api/tickets/<ticket_id>/refund/preview")
@session_required
def refund_preview(ticket_id: str):
    """The confirm step: exactly what a refund would do, checked as the refund itself is."""
    try:
        refund_plan = _refund_planned(ticket_id).plan
    except Refused as exc:
        return _refused(exc)
    return jsonify(summary=refund_plan.summary, destination=refund_plan.destination,
                   amount=refund_plan.amount.format(),
                   amount_minor=refund_plan.amount.amount_minor,
                   currency=refund_plan.amount.currency,
                   refundable=refund_plan.refundable.format(), key=refund_plan.key)


@bp.post("/api/tickets/<ticket_id>/refund")
@session_required
def refund(ticket_id: str):
    """Refund at the processor, at most once for the same request; then note it on the ticket."""
    tenant: Tenant = g.tenant
    try:
        p = _refund_planned(ticket_id)
    except Refused as exc:
        if exc.code in ("over_limit", "over_refundable"):
            _prevented("cap" if exc.code == "over_limit" else "over_refundable")
        return _refused(exc)
    # The same for every request with this key (the processor compares them): no agent in it.
    metadata = {"order_id": p.order.number, "ticket_id": p.plan.request.ticket_id,
                "installation": tenant.key}
    outcome = execute_refund(p.audit, p.processor, p.plan, installation_id=tenant.id,
                             actor=p.actor, metadata=metadata,
                             daily_cap=p.policy.per_day.get(p.actor.role, 0))
    if outcome.repeat or outcome.status == "in_progress":
        _prevented("duplicate")
    elif outcome.status == "refused":
        _prevented("race")
    return _answered(tenant, p.order, outcome,
                     lambda: _note_refund(tenant, p.api, p.agent, p.plan, outcome),
                     refund_id=outcome.refund_id)


# How an action request ended, as the HTTP status of its answer.
_OUTCOME_STATUS = {"done": 200, "in_progress": 202, "refused": 409, "failed": 422,
                   "unknown": 502}


def _answered(tenant: Tenant, order: OrderRef, ended: Outcome,
              note: Callable[[], None] | None = None, **extra: Any):
    """An action's answer. Once done, the next look at the record asks the sources again,
    and the first time (not a repeat) `note` says on the ticket what was done."""
    if ended.status == "done":
        service().invalidate(tenant, order)
        if note is not None and not ended.repeat:
            note()
    return jsonify(status=ended.status, message=ended.message, **extra), \
        _OUTCOME_STATUS[ended.status]


def _note_refund(tenant: Tenant, api: HostApi, agent: Agent, refund_plan: RefundPlan,
                 outcome: Outcome) -> None:
    _note(tenant, api, agent, refund_plan.request.ticket_id, refund_plan.request.order_number,
          f"note-{refund_plan.key}",
          f"Order Truth: {agent.name} refunded {refund_plan.amount.format()} to "
          f"{refund_plan.destination} for order {refund_plan.request.order_number} "
          f"(refund {outcome.refund_id}).")


def _note(tenant: Tenant, api: HostApi, agent: Agent, ticket_id: str, order_number: str,
          key: str, text: str) -> None:
    """An internal note saying what was done (best effort: the action stands either way)."""
    body = f"{text}\n{note_marker(key)}"
    result = actions.submit(db(), api, installation_id=tenant.id, ticket_id=ticket_id,
                            order_number=order_number, kind="note", key=key,
                            payload_factory=lambda: {"body": body},
                            actor=(agent.host_user_id, agent.name))
    if result.status != "done":
        log.warning("%s done on ticket %s, but its note wasn't posted: %s", key, ticket_id,
                    result.message)


# -- resolve the ticket (plugin/actions/resolve.py)


@dataclass(frozen=True)
class _PlannedResolve:
    order: OrderRef
    acting: _Acting
    plan: ResolvePlan


def _resolve_planned(ticket_id: str) -> _PlannedResolve:
    """Who, allowed, the ticket theirs, the outcome from a fresh record: all before writing."""
    tenant: Tenant = g.tenant
    ticket_id = _ticket_id(ticket_id)
    _body, order = _action_body(tenant)
    policy = ResolvePolicy.of(tenant.features, tenant.settings)
    allowed = partial(check_resolve_policy, policy)
    acting = _as_host_says(tenant, ticket_id, _checked_agent(tenant, allowed), allowed)
    truth = service().lookup(tenant, order, refresh=True)
    resolve_plan = plan_resolve(truth, policy, installation_id=tenant.id, ticket_id=ticket_id)
    # The ticket as the agent sees it now says whether an earlier resolve was undone.
    return _PlannedResolve(order, acting, resolve_round(resolve_plan, AuditLog(db()),
                                                        tenant.id, acting.ticket))


@bp.post("/api/tickets/<ticket_id>/resolve/preview")
@session_required
def resolve_preview(ticket_id: str):
    """The confirm step: the record's outcome and exactly what resolving changes."""
    try:
        p = _resolve_planned(ticket_id).plan
    except Refused as exc:
        return _refused(exc)
    return jsonify(outcome=p.outcome, outcome_label=OUTCOMES[p.outcome],
                   changes=p.changes.describe(), summary=p.summary, key=p.key)


@bp.post("/api/tickets/<ticket_id>/resolve")
@session_required
def resolve_ticket(ticket_id: str):
    """Apply the admin's ticket changes for the record's outcome, as the agent, once."""
    tenant: Tenant = g.tenant
    try:
        p = _resolve_planned(ticket_id)
    except Refused as exc:
        return _refused(exc)
    expected = (request.get_json(silent=True) or {}).get("key")
    if expected and expected != p.plan.key:
        # The record moved on between the confirm step and the click: confirm again.
        return jsonify(error={"code": "changed", "message": "The record changed since you "
                              "confirmed; check what resolving will do now.",
                              "summary": p.plan.summary, "key": p.plan.key}), 409
    outcome = execute_resolve(AuditLog(db()), p.acting.api, p.plan, installation_id=tenant.id,
                              actor=p.acting.actor, marker=note_marker(f"note-{p.plan.key}"))
    return _answered(tenant, p.order, outcome, outcome=p.plan.outcome)


# -- cancel a flagged refund still waiting on the customer (plugin/actions/cancel.py)


@dataclass(frozen=True)
class _PlannedCancel:
    order: OrderRef
    acting: _Acting
    processor: RefundCanceller
    plan: CancelPlan


def _cancel_planned(ticket_id: str) -> _PlannedCancel:
    tenant: Tenant = g.tenant
    ticket_id = _ticket_id(ticket_id)
    body, order = _action_body(tenant)
    refund_id = body.get("refund_id")
    if not isinstance(refund_id, str) or not _REFUND_ID.fullmatch(refund_id):
        raise Refused(400, "bad_request", "Which refund to cancel (refund_id) is required.")
    allowed = _allows(cancel_permission(tenant.features, tenant.settings))
    agent = _checked_agent(tenant, allowed)  # before any upstream call
    processor: RefundCanceller = _refund_processor(tenant, CANCEL_ACTION)
    acting = _as_host_says(tenant, ticket_id, agent, allowed)
    truth = service().lookup(tenant, order, refresh=True)
    return _PlannedCancel(order, acting, processor, plan_cancel(
        truth, installation_id=tenant.id, ticket_id=ticket_id, refund_id=refund_id))


@bp.post("/api/tickets/<ticket_id>/refund/cancel/preview")
@session_required
def cancel_refund_preview(ticket_id: str):
    """The confirm step: which refund, how much, what cancelling it means."""
    try:
        cancel_plan = _cancel_planned(ticket_id).plan
    except Refused as exc:
        return _refused(exc)
    return jsonify(summary=cancel_plan.summary, refund_id=cancel_plan.refund_id,
                   amount=cancel_plan.amount.format(), key=cancel_plan.key)


@bp.post("/api/tickets/<ticket_id>/refund/cancel")
@session_required
def cancel_refund(ticket_id: str):
    """Cancel the refund at the processor, at most once; then note it on the ticket."""
    tenant: Tenant = g.tenant
    try:
        p = _cancel_planned(ticket_id)
    except Refused as exc:
        return _refused(exc)
    cancel_plan, agent = p.plan, p.acting.agent
    outcome = execute_cancel(AuditLog(db()), p.processor, cancel_plan,
                             installation_id=tenant.id, actor=p.acting.actor)
    return _answered(tenant, p.order, outcome, lambda: _note(
        tenant, p.acting.api, agent, cancel_plan.ticket_id, cancel_plan.order_number,
        f"note-{cancel_plan.key}",
        f"Order Truth: {agent.name} cancelled refund {cancel_plan.refund_id} of "
        f"{cancel_plan.amount.format()} for order {cancel_plan.order_number} (it was "
        "flagged as refunded twice or too much)."))


# -- make the ERP documents the record shows missing (plugin/actions/erp_fixes.py)


@dataclass(frozen=True)
class _PlannedErpFix:
    order: OrderRef
    acting: _Acting
    erp: ErpWriter
    plan: ErpPlan


def _erp_writer(tenant: Tenant, action: str) -> Any:
    return _writing_client(tenant, SourceName.ERP, action, "No ERP is connected.",
                           "{title} isn't an ERP the sidebar makes documents in.")


def _erp_fix_planned(ticket_id: str) -> _PlannedErpFix:
    tenant: Tenant = g.tenant
    ticket_id = _ticket_id(ticket_id)
    body, order = _action_body(tenant)
    action, subject = body.get("action"), body.get("subject")
    if action not in ERP_FIX_FEATURES:
        raise Refused(400, "bad_request", f"action must be one of "
                                          f"{', '.join(sorted(ERP_FIX_FEATURES))}.")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise Refused(400, "bad_request", "Which return (subject) is required.")
    allowed = _allows(erp_permission(action, tenant.features, tenant.settings))
    agent = _checked_agent(tenant, allowed)  # before any upstream call
    erp: ErpWriter = _erp_writer(tenant, action)
    acting = _as_host_says(tenant, ticket_id, agent, allowed)
    truth = service().lookup(tenant, order, refresh=True)
    try:
        erp_plan = plan_erp_fix(
            truth, erp, action=action, subject=subject, installation_id=tenant.id,
            ticket_id=ticket_id,
            store_inventory_lag=tenant.reconcile_settings.store_inventory_lag,
            store_locations=tenant.reconcile_settings.store_locations)
    except UpstreamError as exc:
        raise Refused(503, "erp_unavailable", f"The ERP couldn't be read just now ({exc}), "
                                              "so nothing was done; try again.") from None
    return _PlannedErpFix(order, acting, erp, erp_plan)


_SUBJECT = re.compile(r"[A-Za-z0-9_:/.-]{1,120}")


@bp.post("/api/tickets/<ticket_id>/erp/preview")
@session_required
def erp_fix_preview(ticket_id: str):
    """The confirm step: exactly which ERP documents will be made, with which lines, where."""
    try:
        erp_plan = _erp_fix_planned(ticket_id).plan
    except Refused as exc:
        return _refused(exc)
    return jsonify(summary=erp_plan.summary, steps=erp_plan.steps, key=erp_plan.key)


@bp.post("/api/tickets/<ticket_id>/erp")
@session_required
def erp_fix(ticket_id: str):
    """Make the documents in the ERP, at most once; then note it on the ticket."""
    tenant: Tenant = g.tenant
    try:
        p = _erp_fix_planned(ticket_id)
    except Refused as exc:
        return _refused(exc)
    erp_plan, agent = p.plan, p.acting.agent
    outcome = execute_erp_fix(AuditLog(db()), p.erp, erp_plan, installation_id=tenant.id,
                              actor=p.acting.actor)
    return _answered(tenant, p.order, outcome, lambda: _note(
        tenant, p.acting.api, agent, erp_plan.ticket_id, erp_plan.order_number,
        f"note-{erp_plan.key}",
        f"Order Truth: {agent.name} fixed the ERP for order {erp_plan.order_number}: "
        f"{' '.join(erp_plan.steps)} {outcome.message}"))
