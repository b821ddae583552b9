"""The admin's browser session: who signed in (through their helpdesk) and the form CSRF value."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import abort, request, session

from ..hosts.base import HostUser
from ..installations import Tenant


def csrf_token() -> str:
    """This browser session's CSRF value for admin forms."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


def check_csrf() -> None:
    """403 unless the form carries this session's CSRF value."""
    sent = request.form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent.encode(), str(session.get("csrf", "")).encode()):
        abort(403, description="The form expired; reload the page and try again.")


def sign_in(tenant: Tenant, user: HostUser) -> None:
    """Remember an admin the helpdesk itself vouched for, for this installation only."""
    session.clear()  # no fixation: a fresh session and CSRF value after sign-in
    session.permanent = True
    session["admin"] = {"installation": tenant.key, "user_id": user.id, "name": user.name,
                        "role": user.role}


def admin_for(tenant: Tenant) -> dict[str, Any] | None:
    """The signed-in admin, if they signed in for this installation."""
    admin = session.get("admin")
    return admin if admin and admin.get("installation") == tenant.key else None


def require_admin(tenant: Tenant) -> dict[str, Any]:
    """The signed-in admin of an active installation, or 403."""
    admin = admin_for(tenant)
    if admin is None:
        abort(403, description="Sign in through your helpdesk as an admin of this account first.")
    if not tenant.active:
        abort(403, description="This installation is disconnected; connect it again first.")
    return admin
