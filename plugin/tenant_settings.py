"""An installation's own settings: one schema validates them wherever they are set."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from marshmallow import Schema, ValidationError, fields, validate

from .core.orderid import DEFAULT_SHAPE, check_shape
from .core.settings import parse_store_locations


def _zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("Not an IANA time zone such as Europe/Berlin.") from None
    if value not in available_timezones() and value != "UTC":
        raise ValidationError("Not an IANA time zone such as Europe/Berlin.")


def _shape(value: str) -> None:
    try:
        check_shape(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


_HOURS: dict[str, Any] = dict(validate=validate.Range(min=0, max=24 * 90))
_CAP: dict[str, Any] = dict(validate=validate.Range(min=0, max=100_000_000))
# Helpdesk roles an admin may allow to run an action.
ROLES = ("admin", "agent")


def _store_locations(value: str) -> None:
    try:
        parse_store_locations(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _roles(value: str) -> None:
    named = [r.strip() for r in value.split(",") if r.strip()]
    unknown = sorted(set(named) - set(ROLES))
    if unknown:
        raise ValidationError(f"Unknown role(s): {', '.join(unknown)}; use admin, agent.")


_TAGS_RE = r"^\s*([a-z0-9_/:.-]{1,80}\s*(,\s*[a-z0-9_/:.-]{1,80}\s*)*)?$"


class _FixedSettingsSchema(Schema):
    """Every setting an admin may change, with its type and limits (the per-outcome ones of
    resolving are added below, as TenantSettingsSchema)."""

    order_id_field_id = fields.Integer(validate=validate.Range(min=0, max=2**53))
    lookup_deadline_seconds = fields.Float(validate=validate.Range(min=0.5, max=30))
    cache_seconds = fields.Integer(validate=validate.Range(min=0, max=3600))
    order_name_prefix = fields.String(validate=validate.Regexp(
        r"^[A-Za-z0-9#._-]{0,10}$", error="Up to 10 letters, digits or # . _ -"))
    order_id_shape = fields.String(validate=_shape)
    timezone = fields.String(validate=_zone)
    return_sync_lag_hours = fields.Float(**_HOURS)
    processor_lag_hours = fields.Float(**_HOURS)
    erp_posting_lag_hours = fields.Float(**_HOURS)
    order_sync_lag_hours = fields.Float(**_HOURS)
    store_inventory_lag_hours = fields.Float(**_HOURS)
    store_locations = fields.String(validate=[validate.Length(max=4000), _store_locations])
    received_not_refunded_after_hours = fields.Float(**_HOURS)
    duplicate_window_hours = fields.Float(**_HOURS)
    refund_match_window_hours = fields.Float(**_HOURS)
    refund_pending_stale_business_days = fields.Integer(validate=validate.Range(min=1, max=60))
    amount_tolerance_minor = fields.Integer(validate=validate.Range(min=0, max=10_000))
    refund_roles = fields.String(validate=_roles)
    refund_cap_currency = fields.String(validate=validate.Regexp(
        r"^[A-Z]{3}$", error="A three-letter currency code such as USD."))
    refund_cap_agent_minor = fields.Integer(**_CAP)
    refund_daily_cap_agent_minor = fields.Integer(**_CAP)
    refund_cap_admin_minor = fields.Integer(**_CAP)
    refund_daily_cap_admin_minor = fields.Integer(**_CAP)
    resolve_roles = fields.String(validate=_roles)
    cancel_refund_roles = fields.String(validate=_roles)
    erp_return_roles = fields.String(validate=_roles)
    note_roles = fields.String(validate=_roles)
    tag_roles = fields.String(validate=_roles)
    erp_receipt_roles = fields.String(validate=_roles)
    resolve_field_id = fields.Integer(validate=validate.Range(min=0, max=2**53))


def _outcome_fields() -> dict[str, fields.Field[Any]]:
    """Per outcome of the record: the ticket status, tags and field value resolving sets."""
    from .actions.outcomes import OUTCOMES, STATUSES

    out: dict[str, fields.Field[Any]] = {}
    for outcome in OUTCOMES:
        out[f"resolve_{outcome}_status"] = fields.String(validate=validate.OneOf(
            STATUSES, error="One of open, pending, solved, or empty to leave it."))
        out[f"resolve_{outcome}_tags"] = fields.String(validate=validate.Regexp(
            _TAGS_RE, error="Tags separated by commas: lower case, no spaces (a-z 0-9 _ - : / .)."))
        out[f"resolve_{outcome}_field"] = fields.String(validate=validate.Length(max=200))
    return out


@dataclass(frozen=True)
class Setting:
    """Where a setting lives in an installation's settings, and its default."""

    name: str
    path: tuple[str, ...]
    default: Any
    help: str
    section: str = "How orders are read"
    # An empty value is a value ("leave the status as it is"), not "keep what was saved".
    blank_ok: bool = False


# The ticket changes each outcome maps to until an admin says otherwise.
_RESOLVE_DEFAULTS = {
    "refunded": ("solved", "order-truth-refunded", "refunded"),
    "partially_refunded": ("pending", "order-truth-partially-refunded", "partially_refunded"),
    "refund_pending": ("pending", "order-truth-refund-pending", "refund_pending"),
    "return_in_progress": ("pending", "order-truth-return-in-progress", "return_in_progress"),
    "needs_attention": ("", "order-truth-needs-attention", "needs_attention"),
    "nothing_to_refund": ("", "order-truth-no-refund", "no_refund"),
}


def _resolve_settings() -> list[Setting]:
    from .actions.outcomes import OUTCOMES

    section = "Resolving tickets"
    out = [Setting("resolve_roles", ("actions", "resolve", "roles"), "admin,agent",
                   "Helpdesk roles that may resolve tickets (comma-separated: admin, agent)",
                   section),
           Setting("resolve_field_id", ("actions", "resolve", "field_id"), 0,
                   "Ticket field resolving fills in, such as “refund status” (its ID; 0 = none)",
                   section)]
    for outcome, label in OUTCOMES.items():
        status, tags, value = _RESOLVE_DEFAULTS[outcome]
        path = ("actions", "resolve", "outcomes", outcome)
        out += [Setting(f"resolve_{outcome}_status", (*path, "status"), status,
                        f"{label}: ticket status (open, pending, solved; empty leaves it)",
                        section, blank_ok=True),
                Setting(f"resolve_{outcome}_tags", (*path, "tags"), tags,
                        f"{label}: tags to add (comma-separated)", section, blank_ok=True),
                Setting(f"resolve_{outcome}_field", (*path, "field"), value,
                        f"{label}: value for the ticket field above", section, blank_ok=True)]
    return out


# Settings the reconciler reads live under "reconcile" (see ReconcileSettings.from_mapping).
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("order_id_field_id", ("order_id_field_id",), 0,
            "Ticket field that holds the order ID (its ID; 0 = read the ticket's text)"),
    Setting("order_name_prefix", ("order_name_prefix",), "#",
            "What the shop puts before order numbers (#1001, EU-1001)"),
    Setting("order_id_shape", ("order_id_shape",), DEFAULT_SHAPE,
            "What an order number looks like in ticket text (a regular expression)"),
    Setting("timezone", ("reconcile", "timezone"), "UTC",
            "The merchant's time zone: dates told to customers are in it"),
    Setting("lookup_deadline_seconds", ("lookup", "deadline_seconds"), None,
            "Longest wait for the systems, in seconds (never longer than the server's own)"),
    Setting("cache_seconds", ("lookup", "cache_seconds"), None,
            "How long an answer is reused, in seconds (0 = always ask the systems)"),
    Setting("return_sync_lag_hours", ("reconcile", "return_sync_lag_hours"), 2,
            "How long a portal return may take to reach the ERP"),
    Setting("processor_lag_hours", ("reconcile", "processor_lag_hours"), 1,
            "How long an ERP refund may take to show at the processor"),
    Setting("erp_posting_lag_hours", ("reconcile", "erp_posting_lag_hours"), 24,
            "How long finance has to book a processor refund"),
    Setting("order_sync_lag_hours", ("reconcile", "order_sync_lag_hours"), 24,
            "How long a paid order may take to reach the ERP"),
    Setting("store_inventory_lag_hours", ("reconcile", "store_inventory_lag_hours"), 24,
            "How long a store return may take to reach ERP inventory"),
    Setting("received_not_refunded_after_hours",
            ("reconcile", "received_not_refunded_after_hours"), 72,
            "How long after receipt a missing refund is flagged"),
    Setting("duplicate_window_hours", ("reconcile", "duplicate_window_hours"), 24,
            "Same-amount refunds this close together are a duplicate"),
    Setting("refund_match_window_hours", ("reconcile", "refund_match_window_hours"), 48,
            "Bookings this close to a refund pair first"),
    Setting("refund_pending_stale_business_days",
            ("reconcile", "refund_pending_stale_business_days"), 5,
            "Business days before a pending refund is flagged"),
    Setting("amount_tolerance_minor", ("reconcile", "amount_tolerance_minor"), 0,
            "Extra minor units of tolerance on top of a unit of rounding per document"),
    # Refunds at the processor (the "refunds" feature turns them on at all).
    Setting("refund_roles", ("actions", "refund", "roles"), "admin",
            "Helpdesk roles that may refund (comma-separated: admin, agent)"),
    Setting("refund_cap_currency", ("actions", "refund", "cap_currency"), "USD",
            "The currency the refund caps are in; refunds in others are refused"),
    Setting("refund_cap_agent_minor", ("actions", "refund", "caps", "agent", "per_refund"), 5_000,
            "Largest single refund an agent may make (minor units: 5000 = 50.00)"),
    Setting("refund_daily_cap_agent_minor", ("actions", "refund", "caps", "agent", "per_day"),
            20_000, "Most an agent may refund in a day, in all (minor units)"),
    Setting("refund_cap_admin_minor", ("actions", "refund", "caps", "admin", "per_refund"),
            50_000, "Largest single refund an admin may make (minor units)"),
    Setting("cancel_refund_roles", ("actions", "cancel_refund", "roles"), "admin,agent",
            "Helpdesk roles that may cancel a flagged refund still waiting on the customer",
            "Refunds"),
    Setting("refund_daily_cap_admin_minor", ("actions", "refund", "caps", "admin", "per_day"),
            200_000, "Most an admin may refund in a day, in all (minor units)"),
    Setting("note_roles", ("actions", "note", "roles"), "admin,agent",
            "Helpdesk roles that may post the summary as an internal note", "Notes and tags"),
    Setting("tag_roles", ("actions", "tags", "roles"), "admin,agent",
            "Helpdesk roles that may tag tickets with the flags found", "Notes and tags"),
    Setting("erp_return_roles", ("actions", "erp_return_authorization", "roles"), "admin",
            "Helpdesk roles that may create a missing return authorization in the ERP",
            "Fixes in the ERP"),
    Setting("erp_receipt_roles", ("actions", "erp_item_receipt", "roles"), "admin",
            "Helpdesk roles that may receive a store return into ERP inventory",
            "Fixes in the ERP"),
    Setting("store_locations", ("reconcile", "store_locations"), "",
            "Stores the ERP names otherwise, as “shop name = ERP name”, separated by “;” "
            "(e.g. Brooklyn Store = BK01 Brooklyn Retail); a store not listed has the same "
            "name in both", "Stores", blank_ok=True),
    *_resolve_settings(),
)}
for _name in [n for n in SETTINGS if SETTINGS[n].path[:2] == ("actions", "refund")]:
    SETTINGS[_name] = replace(SETTINGS[_name], section="Refunds")
for _name in [n for n in SETTINGS if n.endswith(("_hours", "_days", "_minor"))
              and SETTINGS[n].section == "How orders are read"]:
    SETTINGS[_name] = replace(SETTINGS[_name], section="Flag windows and tolerances")
TenantSettingsSchema = Schema.from_dict(
    {**_FixedSettingsSchema._declared_fields, **_outcome_fields()}, name="TenantSettingsSchema")


def validate_changes(raw: dict[str, Any]) -> dict[str, Any]:
    """Typed values for `raw` (strings from a form or the CLI), or ValidationError by field."""
    unknown = sorted(set(raw) - set(SETTINGS))
    if unknown:
        raise ValidationError({name: ["Unknown setting."] for name in unknown})
    loaded: dict[str, Any] = TenantSettingsSchema().load(raw)
    if "order_id_shape" in loaded:
        loaded["order_id_shape"] = check_shape(loaded["order_id_shape"])
    return loaded


def as_changes(values: dict[str, Any]) -> dict[str, Any]:
    """Validated values nested the way installation settings store them."""
    changes: dict[str, Any] = {}
    for name, value in values.items():
        *parents, leaf = SETTINGS[name].path
        node = changes
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return changes


def current(settings: dict[str, Any]) -> dict[str, Any]:
    """Every setting's value for an installation (its own, else the default)."""
    out = {}
    for name, setting in SETTINGS.items():
        node: Any = settings
        for part in setting.path:
            node = node.get(part) if isinstance(node, dict) else None
        out[name] = setting.default if node is None else node
    return out
