"""Zendesk Support API client: tickets, internal notes, tags, users, app keys, OAuth tokens."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from marshmallow import fields

from ...connectors.base import ApiClient, AuthError, UpstreamError, VendorSchema
from ...core.model import ErrorKind
from ..base import HostTicket, HostUser

# Comments scanned when checking whether a note was already posted (newest pages last).
_MAX_COMMENT_PAGES = 10


class UpdateConflict(UpstreamError):
    """Zendesk refused a safe update because the ticket changed since it was read (HTTP 409)."""

    kind = ErrorKind.BAD_RESPONSE


class _CustomField(VendorSchema):
    id = fields.Integer(required=True)
    value = fields.Raw(load_default=None, allow_none=True)


class _Ticket(VendorSchema):
    id = fields.Integer(required=True)
    subject = fields.String(load_default="", allow_none=True)
    description = fields.String(load_default="", allow_none=True)
    updated_at = fields.String(required=True)
    status = fields.String(load_default="", allow_none=True)
    tags = fields.List(fields.String(), load_default=list)
    custom_fields = fields.List(fields.Nested(_CustomField), load_default=list)


class _TicketEnvelope(VendorSchema):
    ticket = fields.Nested(_Ticket, required=True)


class _User(VendorSchema):
    id = fields.Integer(required=True)
    name = fields.String(load_default="", allow_none=True)
    email = fields.String(load_default=None, allow_none=True)
    role = fields.String(required=True)


class _UserEnvelope(VendorSchema):
    user = fields.Nested(_User, required=True)


class _Comment(VendorSchema):
    id = fields.Integer(required=True)
    body = fields.String(load_default="", allow_none=True)
    public = fields.Boolean(load_default=True)
    author_id = fields.Integer(load_default=None, allow_none=True)


class _CommentPage(VendorSchema):
    comments = fields.List(fields.Nested(_Comment), required=True)
    next_page = fields.String(load_default=None, allow_none=True)


class _Audit(VendorSchema):
    id = fields.Integer(required=True)


class _UpdateAnswer(VendorSchema):
    ticket = fields.Nested(_Ticket, required=True)
    audit = fields.Nested(_Audit, load_default=None, allow_none=True)


class _Tags(VendorSchema):
    tags = fields.List(fields.String(), required=True)


class _TokenGrant(VendorSchema):
    access_token = fields.String(required=True)
    token_type = fields.String(load_default="bearer")
    scope = fields.String(load_default="", allow_none=True)
    # Since Zendesk's expiring tokens: the lifetime in seconds, and a refresh token.
    expires_in = fields.Integer(load_default=None, allow_none=True)
    refresh_token = fields.String(load_default=None, allow_none=True)
    refresh_token_expires_in = fields.Integer(load_default=None, allow_none=True)


class GrantRefused(AuthError):
    """The token endpoint refused a code or refresh token (invalid_grant): sign in again."""


class ZendeskClient(ApiClient):
    """One Zendesk account, authenticated by OAuth bearer token, API token, or not at all."""

    system: ClassVar[str] = "zendesk"

    def auth_headers(self, method: str, url: str, params: Mapping[str, Any] | None) -> dict[str, str]:
        creds = self.config.credentials
        if creds.get("access_token"):
            return {"Authorization": f"Bearer {creds['access_token']}"}
        if creds.get("api_token") and creds.get("email"):
            raw = f"{creds['email']}/token:{creds['api_token']}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def error_message(self, payload: Any) -> tuple[str | None, str | None]:
        # {"error": "RecordNotFound", "description": "Not found"} or
        # {"error": {"title": …, "message": …}}; OAuth: {"error", "error_description"}.
        if isinstance(payload, Mapping):
            err = payload.get("error")
            if isinstance(err, Mapping):
                return err.get("title"), err.get("message")
            desc = payload.get("description") or payload.get("error_description")
            desc = desc if isinstance(desc, str) else None
            # RecordInvalid names what was wrong in "details": {field: [{"description"}]}.
            details = payload.get("details")
            if isinstance(details, Mapping):
                said = [d["description"] for found in details.values()
                        if isinstance(found, list) for d in found
                        if isinstance(d, Mapping) and isinstance(d.get("description"), str)]
                if said:
                    desc = f"{desc}: {'; '.join(said)}" if desc else "; ".join(said)
            return (err if isinstance(err, str) else None), desc
        return None, None

    def error_for_status(self, status: int, message: str, **kw: Any) -> UpstreamError:
        if status == 409:
            return UpdateConflict(message, system=self.system, http_status=status,
                                  code=kw.get("code"))
        return super().error_for_status(status, message, **kw)

    # -- app framework

    def public_key_pem(self, app_id: str) -> str:
        """The app's RS256 public key that signs ZAF launch tokens (anonymous endpoint)."""
        resp = self._request("GET", f"/api/v2/apps/{app_id}/public_key.pem",
                             headers={"Accept": "application/x-pem-file, text/plain"})
        text = resp.text.strip()
        if "BEGIN PUBLIC KEY" not in text:
            raise self.bad_response("public key is not a PEM")
        return text

    def exchange_code(self, *, code: str, client_id: str, client_secret: str, redirect_uri: str,
                      code_verifier: str, scope: str = "read write") -> str:
        """Trade an OAuth authorization code (PKCE) for an access token."""
        return str(self.grant_code(code=code, client_id=client_id, client_secret=client_secret,
                                   redirect_uri=redirect_uri, code_verifier=code_verifier,
                                   scope=scope)["access_token"])

    def grant_code(self, *, code: str, client_id: str, client_secret: str, redirect_uri: str,
                   code_verifier: str, scope: str = "read write") -> dict[str, Any]:
        """Trade an authorization code (PKCE) for credentials: the access token and, where
        Zendesk issues them, its expiry (`expires_at`, epoch seconds) and refresh token."""
        return self._token_request({
            "grant_type": "authorization_code", "code": code, "client_id": client_id,
            "client_secret": client_secret, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier, "scope": scope,
        })

    def refresh_grant(self, *, refresh_token: str, client_id: str,
                      client_secret: str) -> dict[str, Any]:
        """A new access and refresh token for a refresh token; Zendesk voids the old pair."""
        return self._token_request({
            "grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": client_id, "client_secret": client_secret,
        })

    def _token_request(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self._request("POST", "/oauth/tokens", json=body)
        except UpstreamError as exc:
            if exc.code == "invalid_grant":
                raise GrantRefused(str(exc), system=self.system, http_status=exc.http_status,
                                   code=exc.code) from None
            raise
        grant = self.load(_TokenGrant, self._json(resp))
        credentials: dict[str, Any] = {"auth": "oauth", "access_token": grant["access_token"]}
        if grant["refresh_token"]:
            credentials["refresh_token"] = grant["refresh_token"]
        if grant["expires_in"]:
            credentials["expires_at"] = int(time.time()) + int(grant["expires_in"])
        return credentials

    # -- HostApi

    def current_user(self) -> HostUser:
        data = self.load(_UserEnvelope, self._json(self._request("GET", "/api/v2/users/me.json")))
        user = data["user"]
        return HostUser(str(user["id"]), user["name"] or "", user["email"], user["role"])

    def get_ticket(self, ticket_id: str) -> HostTicket:
        data = self.load(_TicketEnvelope,
                         self._json(self._request("GET", f"/api/v2/tickets/{ticket_id}.json")))
        t = data["ticket"]
        return HostTicket(
            id=str(t["id"]), subject=t["subject"] or "", description=t["description"] or "",
            updated_at=t["updated_at"], tags=tuple(t["tags"]),
            custom_fields={str(f["id"]): f["value"] for f in t["custom_fields"]},
            status=t["status"] or "",
        )

    def post_internal_note(self, ticket_id: str, body: str) -> None:
        """Add a private comment.

        Resent only when the first attempt provably never connected: a lost response
        may still have posted, and a second note is worse than a reported failure.
        """
        self._request("PUT", f"/api/v2/tickets/{ticket_id}.json",
                      json={"ticket": {"comment": {"body": body, "public": False}}},
                      retry_if_unsent=True)

    def update_ticket(self, ticket_id: str, *, status: str | None, add_tags: list[str],
                      custom_fields: dict[int, str], note: str) -> str:
        """Resolve: tags added first (the tags endpoint adds without replacing the ticket's own;
        safe to repeat), then status, custom fields and the internal note in one ticket update,
        so the note is there exactly when the changes are. Returns Zendesk's audit id."""
        if add_tags:
            self.add_tags(ticket_id, add_tags)
        update: dict[str, Any] = {"comment": {"body": note, "public": False}}
        if status:
            update["status"] = status
        if custom_fields:
            update["custom_fields"] = [{"id": k, "value": v} for k, v in custom_fields.items()]
        resp = self._request("PUT", f"/api/v2/tickets/{ticket_id}.json",
                             json={"ticket": update}, retry_if_unsent=True)
        answer = self.load(_UpdateAnswer, self._json(resp))
        return str(answer["audit"]["id"]) if answer["audit"] else ""

    def comments(self, ticket_id: str, *, newest_first: bool = False,
                 max_pages: int = _MAX_COMMENT_PAGES) -> Iterator[dict[str, Any]]:
        """The ticket's comments, page by page (bounded)."""
        path: str | None = f"/api/v2/tickets/{ticket_id}/comments.json"
        params: dict[str, Any] | None = {"sort_order": "desc" if newest_first else "asc"}
        for _ in range(max_pages):
            page = self.load(_CommentPage, self._json(self._request("GET", path, params=params)))
            yield from page["comments"]
            nxt = page["next_page"]
            # Follow only links back to this same Zendesk: the bearer token goes with them.
            if not nxt or not nxt.startswith(self.base_url + "/"):
                return
            path, params = nxt[len(self.base_url):], None

    def note_exists(self, ticket_id: str, marker: str) -> bool:
        """Whether a comment on the ticket carries `marker` as a line of its own (exactly:
        key `prefixkey` is not found in the note of `prefixkey-1`)."""
        return any(any(line.strip() == marker for line in (c["body"] or "").splitlines())
                   for c in self.comments(ticket_id, newest_first=True))

    def add_tags(self, ticket_id: str, tags: list[str], *, attempts: int = 3) -> list[str]:
        """Add tags with safe_update, re-reading the ticket when Zendesk reports a conflict."""
        for attempt in range(attempts):
            stamp = self.get_ticket(ticket_id).updated_at
            try:
                resp = self._request(
                    "PUT", f"/api/v2/tickets/{ticket_id}/tags.json",
                    json={"tags": tags, "updated_stamp": stamp, "safe_update": True},
                    # Adding the same tags twice is harmless, so this write may be retried.
                    idempotent=True,
                )
            except UpdateConflict:
                if attempt == attempts - 1:
                    raise
                (self._sleep or time.sleep)(0.2 * (attempt + 1))
                continue
            return list(self.load(_Tags, self._json(resp))["tags"])
        raise AssertionError("unreachable")  # pragma: no cover
