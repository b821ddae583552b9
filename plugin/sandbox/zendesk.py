"""A simulated Zendesk: signed app launches, OAuth with PKCE, API-token auth, tickets, notes and tags."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
import jwt.utils
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .dialects import JSON, status_phrase
from .faults import HANG_SECONDS, FaultSpec
from .scenarios import SCENARIOS, Scenario

SANDBOX_ZENDESK_SUBDOMAIN = "order-truth-sandbox"
SANDBOX_ZENDESK_INSTALLATION_ID = "1"
SANDBOX_ZENDESK_APP_ID = "1000001"
SANDBOX_ORDER_FIELD_ID = 360001
# A text field the sandbox's installation maps resolving outcomes into ("refund status").
SANDBOX_REFUND_STATUS_FIELD_ID = 360002
SANDBOX_OAUTH_CLIENT_ID = "order_truth_sandbox"
SANDBOX_OAUTH_CLIENT_SECRET = "sandbox-oauth-secret"
SANDBOX_API_EMAIL = "admin@order-truth-sandbox.example"
SANDBOX_API_TOKEN = "sandbox-zendesk-api-token"
SANDBOX_ADMIN_ID = 9001
SANDBOX_AGENT_ID = 9002
# An agent whose role lets them see only tickets assigned to them (Zendesk's "assigned-only").
SANDBOX_RESTRICTED_ID = 9003
UNKNOWN_ORDER_NUMBER = "9999"
OAUTH_CODE_TTL = timedelta(minutes=10)
# Zendesk's bounds for the expires_in a token request may ask for (seconds).
ACCESS_TTL_RANGE = (300, 172_800)
REFRESH_TTL_RANGE = (604_800, 7_776_000)
DEFAULT_ACCESS_TTL = 7_200
DEFAULT_REFRESH_TTL = 2_592_000
DEFAULT_SCOPE = "read write"
# The statuses an API update may set; "new" is only ever a ticket's first status.
SETTABLE_STATUSES = ("open", "pending", "hold", "solved", "closed")

EXTENSION = "order_truth_sandbox_zendesk"
_REQUESTER_ID_BASE = 9100
_COMMENT_ID_BASE = 5_000_000_000
_AUDIT_ID_BASE = 7_000_000_000
# Zendesk tags are single lowercase words: whitespace would split them, and these
# characters are stripped or refused by Zendesk's tag normaliser.
_TAG = re.compile(r"[^\s,#@!?*\"'<>&;`\\]{1,80}")
_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


@dataclass(frozen=True)
class SandboxUser:
    """A Zendesk user the sandbox knows."""

    id: int
    name: str
    email: str
    role: str
    # None: every ticket; "assigned": only tickets assigned to them (as Zendesk names it).
    ticket_restriction: str | None = None

    def to_json(self) -> JSON:
        """The user as GET /api/v2/users/me.json shows it."""
        return {"id": self.id, "name": self.name, "email": self.email, "role": self.role,
                "ticket_restriction": self.ticket_restriction}

    def may_see(self, ticket: _Ticket) -> bool:
        """Whether Zendesk lets this user see (and so update) the ticket."""
        if self.role == "end-user":
            return ticket.requester_id == self.id
        if self.ticket_restriction == "assigned":
            return ticket.assignee_id == self.id
        return True


STAFF: dict[int, SandboxUser] = {
    SANDBOX_ADMIN_ID: SandboxUser(SANDBOX_ADMIN_ID, "Ada Admin", SANDBOX_API_EMAIL, "admin"),
    SANDBOX_AGENT_ID: SandboxUser(SANDBOX_AGENT_ID, "Sam Agent",
                                  "agent@order-truth-sandbox.example", "agent"),
    SANDBOX_RESTRICTED_ID: SandboxUser(SANDBOX_RESTRICTED_ID, "Riley Restricted",
                                       "riley@order-truth-sandbox.example", "agent",
                                       ticket_restriction="assigned"),
}

_CUSTOMERS = ("Jordan Reyes", "Priya Natarajan", "Marcus Bell", "Hana Sato", "Lena Fischer",
              "Omar Haddad", "Grace Kim", "Diego Morales", "Aiko Tanaka", "Noah Williams",
              "Fatima Zahra", "Ben Carter", "Chloe Martin")

def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def launch_audience(subdomain: str = SANDBOX_ZENDESK_SUBDOMAIN,
                    installation_id: str = SANDBOX_ZENDESK_INSTALLATION_ID) -> str:
    """The `aud` of a ZAF launch JWT: the installation's API URL on the account."""
    return f"https://{subdomain}.zendesk.com/api/v2/apps/installations/{installation_id}.json"


def launch_issuer(subdomain: str = SANDBOX_ZENDESK_SUBDOMAIN) -> str:
    """The `iss` of a ZAF launch JWT."""
    return f"{subdomain}.zendesk.com"


def pkce_challenge(verifier: str) -> str:
    """The S256 PKCE code_challenge for a code_verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def basic_authorization(email: str = SANDBOX_API_EMAIL, api_token: str = SANDBOX_API_TOKEN) -> str:
    """An `Authorization` header value for Zendesk API-token auth."""
    raw = f"{email}/token:{api_token}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


_other_key: str | None = None
_other_key_lock = threading.Lock()


def other_key() -> str:
    """A private key PEM that is not any sandbox's, for "signed with another key" tests."""
    global _other_key
    with _other_key_lock:
        if _other_key is None:
            _other_key = _private_pem(_new_private_key())
        return _other_key


class ZendeskError(Exception):
    """A request Zendesk refuses, with its status and {"error", "description"} body."""

    def __init__(self, status: int, error: str, description: str | None = None,
                 details: JSON | None = None) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.description = description
        self.details = details

    def body(self) -> JSON:
        """The JSON body Zendesk answers with."""
        body: JSON = {"error": self.error}
        if self.description is not None:
            body["description"] = self.description
        if self.details is not None:
            body["details"] = self.details
        return body


class OAuthError(Exception):
    """A refused token request, answered as {"error", "error_description"}."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.description = description


def _invalid(description: str, error: str = "InvalidValue", field_name: str = "base") -> ZendeskError:
    return ZendeskError(422, "RecordInvalid", "Record validation errors",
                        {field_name: [{"description": description, "error": error}]})


def api_error(status: int) -> ZendeskError:
    """The error Zendesk answers for a bare status (used for injected faults)."""
    known = {
        401: ("Couldn't authenticate you", None),
        403: ("Forbidden", "You do not have access to this page. Please contact the account "
                           "owner of this help desk for further help."),
        404: ("RecordNotFound", "Not found"),
        409: ("UpdateConflict", "The ticket was updated by someone else; retry the update."),
        422: ("RecordInvalid", "Record validation errors"),
        429: ("APIRateLimitExceeded", "Number of allowed API requests per minute exceeded"),
    }
    phrase = status_phrase(status)
    error, description = known.get(status, (phrase.replace(" ", ""), phrase))
    return ZendeskError(status, error, description)


# ---------------------------------------------------------------- faults


@dataclass(frozen=True)
class WriteFailure:
    """How the next write requests fail: before applying, or after applying (answer lost)."""

    count: int = 0
    status: int = 500
    retry_after: int | None = None
    drop: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(f"count must be a non-negative integer, got {self.count!r}")
        if not isinstance(self.drop, bool):
            raise ValueError(f"drop must be a boolean, got {self.drop!r}")
        FaultSpec(status=self.status, retry_after=self.retry_after)  # validates both

    def to_json(self) -> JSON:
        """The failure as a JSON object."""
        return {"count": self.count, "status": self.status, "retry_after": self.retry_after,
                "drop": self.drop}


class ZendeskFaults:
    """Thread-safe Zendesk faults: a FaultSpec for every API request, plus write failures."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._spec: FaultSpec | None = None
        self._before = WriteFailure()
        self._after = WriteFailure()
        self._version = 0
        self._epoch = 0

    def set(self, spec: FaultSpec) -> None:
        """Make every /api/v2 request misbehave as `spec` says."""
        with self._cond:
            self._spec = spec
            self._changed()

    def get(self) -> FaultSpec | None:
        """The FaultSpec now in force, if any."""
        with self._cond:
            return self._spec

    def fail_next(self, n: int, status: int = 500, *, retry_after: int | None = None) -> None:
        """Refuse the next `n` writes (PUT ticket / PUT tags) with `status`, changing nothing."""
        failure = WriteFailure(n, status, retry_after)
        with self._cond:
            self._before = failure
            self._changed()

    def fail_after_write(self, n: int, status: int = 500, *, drop: bool = False) -> None:
        """Apply the next `n` writes, then answer `status` (or drop the connection) instead."""
        failure = WriteFailure(n, status, drop=drop)
        with self._cond:
            self._after = failure
            self._changed()

    def take_before_write(self) -> WriteFailure | None:
        """Consume one pending fail_next, if any."""
        with self._cond:
            return self._take("_before")

    def take_after_write(self) -> WriteFailure | None:
        """Consume one pending fail_after_write, if any."""
        with self._cond:
            return self._take("_after")

    def clear_spec(self) -> None:
        """Remove the FaultSpec, keeping pending write failures."""
        with self._cond:
            self._spec = None
            self._changed()

    def clear(self) -> None:
        """Remove every Zendesk fault."""
        with self._cond:
            self._spec = None
            self._before = self._after = WriteFailure()
            self._changed()

    def snapshot(self) -> JSON:
        """The faults now in force as JSON."""
        with self._cond:
            return {"fault": self._spec.to_json() if self._spec else None,
                    "fail_next": self._before.to_json(),
                    "fail_after_write": self._after.to_json()}

    def wake_all(self) -> None:
        """End every sleep in progress (used when the server stops)."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False if woken early by wake_all() or a fault change."""
        deadline = time.monotonic() + seconds
        with self._cond:
            epoch, version = self._epoch, self._version
            while True:
                if self._epoch != epoch or self._version != version:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)

    def _take(self, name: str) -> WriteFailure | None:
        failure: WriteFailure = getattr(self, name)
        if failure.count <= 0:
            return None
        setattr(self, name, WriteFailure(failure.count - 1, failure.status, failure.retry_after,
                                         failure.drop))
        return failure

    def _changed(self) -> None:
        self._version += 1
        self._cond.notify_all()


# ---------------------------------------------------------------- tickets and grants


@dataclass
class _Ticket:
    id: int
    order_number: str
    subject: str
    description: str
    requester_id: int
    custom_value: str | None
    created_at: datetime
    updated_at: datetime
    status: str = "open"
    assignee_id: int = SANDBOX_AGENT_ID
    tags: list[str] = field(default_factory=list)
    comments: list[JSON] = field(default_factory=list)
    refund_status: str | None = None

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "url": f"https://{SANDBOX_ZENDESK_SUBDOMAIN}.zendesk.com/api/v2/tickets/{self.id}.json",
            "subject": self.subject,
            "description": self.description,
            "status": self.status,
            "tags": list(self.tags),
            "custom_fields": [{"id": SANDBOX_ORDER_FIELD_ID, "value": self.custom_value},
                              {"id": SANDBOX_REFUND_STATUS_FIELD_ID, "value": self.refund_status}],
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "requester_id": self.requester_id,
            "assignee_id": self.assignee_id,
        }


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str
    user_id: int
    issued_at: datetime
    used: bool = False
    token: str | None = None


def _html_body(body: str) -> str:
    return html.escape(body).replace("\r\n", "\n").replace("\n", "<br>")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class SandboxZendesk:
    """One simulated Zendesk account: signing key, tickets, OAuth grants and tokens, faults."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 scenarios: Iterable[Scenario] = SCENARIOS, *, secret: bytes | None = None,
                 access_ttl: int = DEFAULT_ACCESS_TTL) -> None:
        self.now = now
        self.faults = ZendeskFaults()
        self._scenarios = tuple(scenarios)
        # One lock for tickets, ids, grants, tokens and the key: every operation is tiny.
        self._lock = threading.RLock()
        self._key: rsa.RSAPrivateKey | None = None
        self._tickets: dict[int, _Ticket] = {}
        self._requesters: dict[int, str] = {}
        self._grants: dict[str, _Grant] = {}
        # OAuth tokens are signed with this secret and carry their user, scope and expiry, so
        # a sandbox restarted with the same secret still honours the tokens it issued.
        self._secret = secret or secrets.token_bytes(32)
        self.access_ttl = access_ttl
        # Token families (an access token and its refresh token) revoked or refreshed away,
        # and the revocation epoch: tokens from an earlier epoch are dead. Both are in memory.
        self._dead_families: set[str] = set()
        self._epoch = 0
        self.last_family = ""
        self.refreshes = 0
        self._next_comment = _COMMENT_ID_BASE
        self._next_audit = _AUDIT_ID_BASE
        self._seed()

    # ------------------------------------------------------------ keys and launches

    def _signing_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            # Generated on first use: most sandbox states never sign anything, and RSA
            # key generation costs tens of milliseconds.
            if self._key is None:
                self._key = _new_private_key()
            return self._key

    def public_key_pem(self) -> str:
        """The app's public key (SubjectPublicKeyInfo PEM), as /public_key.pem serves it."""
        return _public_pem(self._signing_key())

    def private_key_pem(self) -> str:
        """The app's current private key (PKCS#8 PEM)."""
        return _private_pem(self._signing_key())

    def rotate(self) -> None:
        """Swap to a new key pair; the public key endpoint serves the new key from now on."""
        key = _new_private_key()
        with self._lock:
            self._key = key

    def sign_launch(self, *, installation_id: str = SANDBOX_ZENDESK_INSTALLATION_ID,
                    subdomain: str = SANDBOX_ZENDESK_SUBDOMAIN, ttl: int = 300,
                    now: datetime | None = None, claims_override: Mapping[str, Any] | None = None,
                    drop: tuple[str, ...] = (), signing_key: str | None = None) -> str:
        """An RS256 ZAF launch JWT as Zendesk POSTs it (form field `token`) to a signed URL."""
        # JWT libraries check iat/exp against the wall clock, so the default is the real
        # time rather than the sandbox's (possibly frozen) scenario clock.
        issued = int((now or datetime.now(UTC)).timestamp())
        claims: JSON = {
            "iss": launch_issuer(subdomain),
            "aud": launch_audience(subdomain, installation_id),
            "iat": issued,
            "exp": issued + ttl,
            # Each launch is its own token, as Zendesk's are: two tabs opened in the same
            # second must not get byte-identical tokens (the second would be a "replay").
            "jti": secrets.token_hex(16),
            "context": {"product": "support", "location": "ticket_sidebar"},
        }
        claims.update(claims_override or {})
        for name in drop:
            claims.pop(name, None)
        key: Any = signing_key if signing_key is not None else self._signing_key()
        return jwt.encode(claims, key, algorithm="RS256")

    # ------------------------------------------------------------ users and tokens

    def user(self, user_id: int) -> SandboxUser | None:
        """A staff user (admin 9001, agent 9002) or a ticket requester, by id."""
        if user_id in STAFF:
            return STAFF[user_id]
        with self._lock:
            name = self._requesters.get(user_id)
        if name is None:
            return None
        email = f"{name.lower().replace(' ', '.')}@customers.example"
        return SandboxUser(user_id, name, email, "end-user")

    def authenticate(self, authorization: str) -> SandboxUser | None:
        """The user an `Authorization` header (Bearer OAuth token or Basic API token) names."""
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            claims = self._read_token(credentials, "access")
            return STAFF.get(claims["u"]) if claims else None
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        login, _, token = decoded.partition(":")
        email = login.removesuffix("/token")
        if email == login or not hmac.compare_digest(token.encode(), SANDBOX_API_TOKEN.encode()):
            return None
        # An API token may act as any staff member, as in Zendesk; the documented email is the admin.
        return next((user for user in STAFF.values() if user.email == email.lower()), None)

    def issue_token(self, user_id: int = SANDBOX_ADMIN_ID, scope: str = DEFAULT_SCOPE) -> str:
        """Mint an OAuth access token for a staff user without the consent dance (for tests)."""
        if user_id not in STAFF:
            raise ValueError(f"unknown staff user {user_id}")
        return self._mint(user_id, scope, "access", self.access_ttl, secrets.token_hex(8))

    def revoke_tokens(self) -> None:
        """Revoke every OAuth token issued so far (access and refresh)."""
        with self._lock:
            self._epoch += 1

    def _mint(self, user_id: int, scope: str, kind: str, ttl: int, family: str) -> str:
        with self._lock:
            epoch = self._epoch
        claims = {"u": user_id, "s": scope, "k": kind, "f": family, "ep": epoch,
                  "exp": int(self.now().timestamp()) + ttl, "n": secrets.token_hex(4)}
        body = base64.urlsafe_b64encode(
            jwt.utils.force_bytes(_compact(claims))).rstrip(b"=").decode("ascii")
        return f"zsbx1.{body}.{self._mac(body)}"

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._secret, f"zsbx1.{body}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def _read_token(self, token: str, kind: str) -> dict[str, Any] | None:
        """A live token's claims: signed by this account, of this kind, unexpired, unrevoked."""
        prefix, _, rest = token.partition(".")
        body, _, mac = rest.partition(".")
        if prefix != "zsbx1" or not body or not hmac.compare_digest(mac.encode(),
                                                                    self._mac(body).encode()):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        with self._lock:
            dead = claims.get("f") in self._dead_families or claims.get("ep", -1) < self._epoch
        if dead or claims.get("k") != kind or claims.get("u") not in STAFF \
                or claims.get("exp", 0) <= self.now().timestamp():
            return None
        return claims

    def _token_pair(self, user_id: int, scope: str, params: Mapping[str, Any]) -> JSON:
        access_ttl = _ttl(params.get("expires_in"), ACCESS_TTL_RANGE, self.access_ttl)
        refresh_ttl = _ttl(params.get("refresh_token_expires_in"), REFRESH_TTL_RANGE,
                           DEFAULT_REFRESH_TTL)
        family = secrets.token_hex(8)
        with self._lock:
            self.last_family = family
        return {"access_token": self._mint(user_id, scope, "access", access_ttl, family),
                "token_type": "bearer", "scope": scope, "expires_in": access_ttl,
                "refresh_token": self._mint(user_id, scope, "refresh", refresh_ttl, family),
                "refresh_token_expires_in": refresh_ttl}

    def refresh(self, params: Mapping[str, Any]) -> JSON:
        """Answer POST /oauth/tokens for the refresh_token grant: a new pair, the old one dead."""
        _check_client(params)
        claims = self._read_token(str(params.get("refresh_token", "")), "refresh")
        if claims is None:
            raise _invalid_grant()
        with self._lock:
            if claims["f"] in self._dead_families:  # lost a race with another refresh
                raise _invalid_grant()
            self._dead_families.add(claims["f"])
            self.refreshes += 1
        return self._token_pair(claims["u"], claims["s"], params)

    # ------------------------------------------------------------ OAuth grants

    def authorize(self, *, client_id: str, redirect_uri: str, scope: str, code_challenge: str,
                  user_id: int = SANDBOX_ADMIN_ID) -> str:
        """Record an approved consent and return its single-use authorization code."""
        code = secrets.token_urlsafe(24)
        grant = _Grant(client_id, redirect_uri, scope or DEFAULT_SCOPE, code_challenge, user_id,
                       self.now())
        with self._lock:
            self._grants[code] = grant
        return code

    def exchange_code(self, params: Mapping[str, Any]) -> JSON:
        """Answer POST /oauth/tokens for the authorization_code grant, or raise OAuthError."""
        _check_client(params)
        code = str(params.get("code", ""))
        with self._lock:
            grant = self._grants.get(code)
            if grant is None:
                raise _invalid_grant()
            if grant.used:
                # RFC 6749 §4.1.2: a replayed code revokes what it was exchanged for.
                if grant.token is not None:
                    self._dead_families.add(grant.token)
                raise _invalid_grant()
            # Spent by any attempt, so a wrong verifier cannot be retried against the same code.
            grant.used = True
            if self.now() - grant.issued_at > OAUTH_CODE_TTL:
                raise _invalid_grant()
            if grant.client_id != params.get("client_id") \
                    or grant.redirect_uri != params.get("redirect_uri"):
                raise _invalid_grant()
            verifier = params.get("code_verifier")
            if not isinstance(verifier, str) or not _PKCE_VERIFIER.fullmatch(verifier) \
                    or not hmac.compare_digest(pkce_challenge(verifier), grant.challenge):
                raise _invalid_grant()
        with self._lock:
            pair = self._token_pair(grant.user_id, grant.scope, params)
            grant.token = self.last_family
        return pair

    # ------------------------------------------------------------ tickets

    def _seed(self) -> None:
        now = _to_second(self.now())
        orders = [(s.order_number, s.name, s.title) for s in self._scenarios]
        orders.append((UNKNOWN_ORDER_NUMBER, "unknown_order", "Order nobody can find"))
        asks = {s.name: s.ask for s in self._scenarios}
        tickets: dict[int, _Ticket] = {}
        requesters: dict[int, str] = {}
        for i, (number, name, title) in enumerate(orders, start=1):
            ticket_id = 100 + i
            customer = _CUSTOMERS[(i - 1) % len(_CUSTOMERS)]
            requester_id = _REQUESTER_ID_BASE + i
            requesters[requester_id] = customer
            # Tickets 101, 102, 105, 106, ... name the order in the subject; the rest only in
            # the description, so both places get exercised with and without the custom field.
            subject = f"{title} - order #{number}" if (i - 1) // 2 % 2 == 0 else title
            ask = asks.get(name, "I can't find my order anywhere. Can you look it up?")
            description = f"Hi, this is about my order #{number}. {ask}\n\nThanks,\n{customer}"
            created = now - timedelta(days=1, hours=len(orders) - i)
            ticket = _Ticket(ticket_id, number, subject, description, requester_id,
                             number if i % 2 == 0 else None, created, created,
                             # The restricted agent is assigned the first ticket only.
                             assignee_id=SANDBOX_RESTRICTED_ID if i == 1 else SANDBOX_AGENT_ID)
            # As in Zendesk, the description is the ticket's first (public) comment.
            ticket.comments.append(self._comment(requester_id, description, True, created, None))
            tickets[ticket_id] = ticket
        with self._lock:
            self._tickets, self._requesters = tickets, requesters

    def _comment(self, author_id: int, body: str, public: bool, created: datetime,
                 audit_id: int | None) -> JSON:
        with self._lock:
            self._next_comment += 1
            comment_id = self._next_comment
        return {"id": comment_id, "type": "Comment", "author_id": author_id, "body": body,
                "html_body": _html_body(body), "plain_body": body, "public": public,
                "audit_id": audit_id, "created_at": _iso(created)}

    def _bump(self, ticket: _Ticket) -> datetime:
        """A new updated_at: the clock to the second, but always after the previous one."""
        stamp = max(_to_second(self.now()), ticket.updated_at + timedelta(seconds=1))
        ticket.updated_at = stamp
        return stamp

    def _audit(self, ticket: _Ticket, author_id: int, events: list[JSON], at: datetime) -> JSON:
        return {"id": self._next_audit, "ticket_id": ticket.id, "created_at": _iso(at),
                "author_id": author_id, "events": events}

    def _get(self, ticket_id: int, user: SandboxUser | None = None) -> _Ticket:
        """The ticket, if it exists and `user` (when given) may see it: 404, else 403."""
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            raise api_error(404)
        if user is not None and not user.may_see(ticket):
            raise api_error(403)
        return ticket

    def reset(self) -> None:
        """Reseed the tickets and forget pending codes and faults (key and tokens stay)."""
        self.faults.clear()
        with self._lock:
            self._grants.clear()
            self._seed()

    def tickets(self) -> list[JSON]:
        """Every ticket with its comments, oldest id first (copies)."""
        with self._lock:
            return [self._inspect(t) for t in sorted(self._tickets.values(), key=lambda t: t.id)]

    def ticket(self, ticket_id: int) -> JSON | None:
        """One ticket with its comments (a copy), or None."""
        with self._lock:
            ticket = self._tickets.get(ticket_id)
            return self._inspect(ticket) if ticket else None

    @staticmethod
    def _inspect(ticket: _Ticket) -> JSON:
        return {**ticket.to_json(), "order_number": ticket.order_number,
                "comments": copy.deepcopy(ticket.comments)}

    def show_ticket(self, ticket_id: int, user: SandboxUser | None = None) -> JSON:
        """GET /api/v2/tickets/{id}.json."""
        with self._lock:
            return {"ticket": self._get(ticket_id, user).to_json()}

    def comments(self, ticket_id: int, *, newest_first: bool = False,
                 user: SandboxUser | None = None) -> JSON:
        """GET /api/v2/tickets/{id}/comments.json (one page; sort_order=desc is newest first)."""
        with self._lock:
            found = copy.deepcopy(self._get(ticket_id, user).comments)
        if newest_first:
            found.reverse()
        return {"comments": found, "next_page": None, "previous_page": None, "count": len(found)}

    def update_ticket(self, ticket_id: int, body: Any, user: SandboxUser) -> JSON:
        """PUT /api/v2/tickets/{id}.json: add a comment and/or change status."""
        update = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(update, dict):
            raise ZendeskError(400, "BadRequest",
                               'Expected a JSON object like {"ticket": {"comment": {...}}}')
        comment = update.get("comment")
        status = update.get("status")
        fields_set = _custom_fields(update.get("custom_fields"))
        author_id = user.id
        if comment is None and status is None and not fields_set:
            raise _invalid("Comment: cannot be blank", "BlankValue", "comment")
        if comment is not None:
            if not isinstance(comment, dict) or not isinstance(comment.get("body"), str) \
                    or not comment["body"].strip():
                raise _invalid("Comment: cannot be blank", "BlankValue", "comment")
            if not isinstance(comment.get("public", True), bool):
                raise _invalid("Comment: public must be true or false", "InvalidValue", "comment")
            author_id = comment.get("author_id", user.id)
            if isinstance(author_id, bool) or not isinstance(author_id, int) \
                    or self.user(author_id) is None:
                raise _invalid(f"Comment: author {author_id!r} is not a user", "InvalidValue",
                               "comment")
        if status is not None and status not in SETTABLE_STATUSES:
            raise _invalid(f"Status: {status!r} is not valid", "InvalidValue", "status")
        with self._lock:
            ticket = self._get(ticket_id, user)
            _check_stamp(update, ticket)
            if ticket.status == "closed":
                raise _invalid("Status: closed prevents ticket update", "ClosedPreventsUpdate",
                               "status")
            stamp = self._bump(ticket)
            self._next_audit += 1
            events: list[JSON] = []
            if comment is not None:
                created = self._comment(author_id, comment["body"], comment.get("public", True),
                                        stamp, self._next_audit)
                ticket.comments.append(created)
                events.append({"id": created["id"], "type": "Comment", "author_id": author_id,
                               "body": created["body"], "html_body": created["html_body"],
                               "public": created["public"]})
            if status is not None and status != ticket.status:
                events.append({"type": "Change", "field_name": "status", "value": status,
                               "previous_value": ticket.status})
                ticket.status = status
            for field_id, value in fields_set.items():
                previous = ticket.custom_value if field_id == SANDBOX_ORDER_FIELD_ID \
                    else ticket.refund_status
                if value == previous:
                    continue
                events.append({"type": "Change", "field_name": str(field_id), "value": value,
                               "previous_value": previous})
                if field_id == SANDBOX_ORDER_FIELD_ID:
                    ticket.custom_value = value
                else:
                    ticket.refund_status = value
            return {"ticket": ticket.to_json(),
                    "audit": self._audit(ticket, user.id, events, stamp)}

    def tags(self, ticket_id: int, user: SandboxUser | None = None) -> JSON:
        """GET /api/v2/tickets/{id}/tags.json."""
        with self._lock:
            return {"tags": list(self._get(ticket_id, user).tags)}

    def add_tags(self, ticket_id: int, body: Any, user: SandboxUser | None = None) -> JSON:
        """PUT /api/v2/tickets/{id}/tags.json: add tags, honouring safe_update/updated_stamp."""
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise _invalid("Tags: must be a list of strings", "InvalidValue", "tags")
        for tag in tags:
            if not _TAG.fullmatch(tag) or tag != tag.lower():
                raise _invalid(f"Tags: {tag!r} is not a valid tag (lowercase, no spaces or "
                               "special characters)", "InvalidValue", "tags")
        with self._lock:
            ticket = self._get(ticket_id, user)
            _check_stamp(body, ticket)
            added = [tag for tag in dict.fromkeys(tags) if tag not in ticket.tags]
            if added:
                ticket.tags.extend(added)
                self._bump(ticket)
            return {"tags": list(ticket.tags)}


def _custom_fields(value: Any) -> dict[int, str | None]:
    """custom_fields of a ticket update: [{"id": N, "value": V}], fields this account has."""
    if value is None:
        return {}
    if not isinstance(value, list) or not all(
            isinstance(f, dict) and isinstance(f.get("id"), int) and not isinstance(f["id"], bool)
            and (f.get("value") is None or isinstance(f.get("value"), str)) for f in value):
        raise _invalid('Custom fields: expected [{"id": 123, "value": "text"}]', "InvalidValue",
                       "custom_fields")
    out: dict[int, str | None] = {}
    for f in value:
        if f["id"] not in (SANDBOX_ORDER_FIELD_ID, SANDBOX_REFUND_STATUS_FIELD_ID):
            raise _invalid(f"Custom fields: {f['id']} is not a ticket field of this account",
                           "InvalidValue", "custom_fields")
        out[f["id"]] = f.get("value")
    return out


def _check_client(params: Mapping[str, Any]) -> None:
    grant_type = params.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise OAuthError(400, "unsupported_grant_type",
                         "The authorization grant type is not supported by the authorization "
                         "server.")
    client_id, secret = str(params.get("client_id", "")), str(params.get("client_secret", ""))
    if not (hmac.compare_digest(client_id.encode(), SANDBOX_OAUTH_CLIENT_ID.encode())
            and hmac.compare_digest(secret.encode(), SANDBOX_OAUTH_CLIENT_SECRET.encode())):
        raise OAuthError(401, "invalid_client",
                         "Client authentication failed due to unknown client, no client "
                         "authentication included, or unsupported authentication method.")


def _ttl(value: Any, bounds: tuple[int, int], default: int) -> int:
    """A requested token lifetime in seconds, within Zendesk's bounds (or the default)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise OAuthError(400, "invalid_request",
                         f"expires_in must be an integer from {bounds[0]} to {bounds[1]}.")
    return value


def _compact(claims: Mapping[str, Any]) -> str:
    return json.dumps(claims, separators=(",", ":"), sort_keys=True)


def _invalid_grant() -> OAuthError:
    return OAuthError(400, "invalid_grant",
                      "The provided authorization grant is invalid, expired, revoked, does not "
                      "match the redirection URI used in the authorization request, or was "
                      "issued to another client.")


def _check_stamp(body: Mapping[str, Any], ticket: _Ticket) -> None:
    """Refuse with 409 when safe_update is on and updated_stamp is not the ticket's updated_at."""
    if body.get("safe_update") not in (True, "true") or body.get("updated_stamp") is None:
        return
    raw = body["updated_stamp"]
    try:
        stamp = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise _invalid(f"updated_stamp {raw!r} is not an ISO 8601 UTC time", "InvalidValue",
                       "updated_stamp")
    if stamp != ticket.updated_at:
        raise ZendeskError(409, "UpdateConflict",
                           "Safe Update prevented the update due to outdated ticket data. "
                           "Please fetch the latest ticket data and try again.")


# ---------------------------------------------------------------- HTTP


zendesk_api = Blueprint("zendesk", __name__, url_prefix="/zendesk")
zendesk_control = Blueprint("zendesk_control", __name__, url_prefix="/_sandbox/zendesk")


def register_zendesk(app: Flask, zendesk: SandboxZendesk) -> None:
    """Mount the simulated Zendesk under /zendesk and its control routes under /_sandbox/zendesk."""
    app.extensions[EXTENSION] = zendesk
    app.register_blueprint(zendesk_api)
    app.register_blueprint(zendesk_control)


def _zendesk() -> SandboxZendesk:
    return current_app.extensions[EXTENSION]


def _json(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _error_response(error: ZendeskError, retry_after: int | None = None) -> Response:
    response = _json(error.body(), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Web Password"'
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@zendesk_api.errorhandler(ZendeskError)
def _zendesk_error(error: ZendeskError) -> Response:
    return _error_response(error)


@zendesk_api.errorhandler(OAuthError)
def _oauth_error(error: OAuthError) -> Response:
    response = _json({"error": error.error, "error_description": error.description}, error.status)
    response.headers["Cache-Control"] = "no-store"
    return response


def unknown_zendesk_route(error: HTTPException) -> Response:
    """Zendesk's answer to a path or method it does not serve."""
    if error.code == 405:
        return _json({"error": "InvalidEndpoint", "description": "Method not allowed"}, 405)
    return _json({"error": "InvalidEndpoint", "description": "Not found"}, error.code or 404)


@zendesk_api.before_request
def _fault_then_authenticate() -> None:
    if not request.path.startswith(f"{zendesk_api.url_prefix}/api/"):
        return  # the OAuth pages are the login site, not the API
    _enact(_zendesk().faults.get())
    if request.endpoint == "zendesk.public_key":
        return
    user = _zendesk().authenticate(request.headers.get("Authorization", ""))
    if user is None:
        raise api_error(401)
    g.zendesk_user = user


def _enact(spec: FaultSpec | None) -> None:
    """Sleep, then refuse with the spec's status or mark the body for corruption."""
    if spec is None:
        return
    seconds = spec.delay_ms / 1000 + (HANG_SECONDS if spec.hang else 0)
    # A fault cleared mid-sleep stops applying; any sleep ends when the server stops.
    if seconds and not _zendesk().faults.sleep(seconds):
        return
    if spec.status is not None:
        abort(_error_response(api_error(spec.status), spec.retry_after))
    if spec.malformed:
        g.zendesk_malformed = True


@zendesk_api.after_request
def _corrupt_if_malformed(response: Response) -> Response:
    if g.get("zendesk_malformed"):
        # A strict prefix of a JSON document is never valid JSON.
        body = response.get_data()
        response.set_data(body[: len(body) // 2])
        response.status_code = 200
    return response


def _write(apply: Callable[[], JSON]) -> Response:
    """Run a write with the pending write failures: refuse before, or apply then lose the answer."""
    faults = _zendesk().faults
    before = faults.take_before_write()
    if before is not None:
        abort(_error_response(api_error(before.status), before.retry_after))
    result = apply()
    after = faults.take_after_write()
    if after is None:
        return _json(result)
    if after.drop:
        _drop_connection()
    return _error_response(api_error(after.status))


def _drop_connection() -> None:
    """Close the client's socket so it sees the connection die without any response."""
    sock = request.environ.get("werkzeug.socket")
    if sock is None:
        return  # not served by werkzeug (e.g. the test client): fall back to the error status
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@zendesk_api.get("/api/v2/apps/<app_id>/public_key.pem")
@zendesk_api.get("/api/v2/apps/<app_id>/public_key")
def public_key(app_id: str) -> Response:
    """The app's PEM public key for verifying signed-URL JWTs (anonymous)."""
    if app_id != SANDBOX_ZENDESK_APP_ID:
        raise api_error(404)
    return Response(_zendesk().public_key_pem(), mimetype="application/x-pem-file")


@zendesk_api.get("/api/v2/users/me.json")
def users_me() -> Response:
    """The authenticated user."""
    return _json({"user": g.zendesk_user.to_json()})


@zendesk_api.get("/api/v2/tickets/<int:ticket_id>.json")
def show_ticket(ticket_id: int) -> Response:
    """One ticket."""
    return _json(_zendesk().show_ticket(ticket_id, g.zendesk_user))


@zendesk_api.put("/api/v2/tickets/<int:ticket_id>.json")
def update_ticket(ticket_id: int) -> Response:
    """Add a comment (an internal note when public is false) and/or change the status."""
    body = request.get_json(silent=True)
    return _write(lambda: _zendesk().update_ticket(ticket_id, body, g.zendesk_user))


@zendesk_api.get("/api/v2/tickets/<int:ticket_id>/comments.json")
def list_comments(ticket_id: int) -> Response:
    """A ticket's comments in one page, oldest first unless ?sort_order=desc."""
    newest_first = request.args.get("sort_order", "asc").lower() == "desc"
    return _json(_zendesk().comments(ticket_id, newest_first=newest_first, user=g.zendesk_user))


@zendesk_api.get("/api/v2/tickets/<int:ticket_id>/tags.json")
def list_tags(ticket_id: int) -> Response:
    """A ticket's tags."""
    return _json(_zendesk().tags(ticket_id, g.zendesk_user))


@zendesk_api.put("/api/v2/tickets/<int:ticket_id>/tags.json")
def add_tags(ticket_id: int) -> Response:
    """Add tags; safe_update with a stale updated_stamp is a 409."""
    body = request.get_json(silent=True)
    return _write(lambda: _zendesk().add_tags(ticket_id, body, g.zendesk_user))


# ---------------------------------------------------------------- OAuth pages

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;color:#2f3941}}
button{{margin:.25rem .5rem .25rem 0;padding:.5rem 1rem}}</style></head>
<body>{body}</body></html>
"""
_AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state",
                     "code_challenge", "code_challenge_method")


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(_PAGE.format(title=html.escape(title), body=body), status,
                    mimetype="text/html")


def _authorize_problem(params: Mapping[str, str]) -> str | None:
    if params.get("client_id") != SANDBOX_OAUTH_CLIENT_ID:
        return "Invalid authorization request: unknown client_id."
    if params.get("response_type") != "code":
        return "Invalid authorization request: response_type must be \"code\"."
    redirect = urlsplit(params.get("redirect_uri", ""))
    if redirect.scheme not in ("http", "https") or not redirect.netloc:
        return "Invalid authorization request: redirect_uri must be an absolute http(s) URL."
    if not params.get("code_challenge"):
        return "Invalid authorization request: code_challenge is required (PKCE)."
    if params.get("code_challenge_method") != "S256":
        return "Invalid authorization request: code_challenge_method must be S256."
    return None


@zendesk_api.route("/oauth/authorizations/new", methods=["GET", "POST"])
def authorize() -> Response:
    """The consent page (GET) and its answer (POST): a redirect with a code or access_denied."""
    source = request.args if request.method == "GET" else request.form
    params = {name: source.get(name, "") for name in _AUTHORIZE_PARAMS}
    problem = _authorize_problem(params)
    if problem is not None:
        return _page("Invalid request", f"<h1>Invalid request</h1><p>{html.escape(problem)}</p>",
                     400)
    if request.method == "GET":
        return _consent_page(params)
    reply = {"state": params["state"]} if params["state"] else {}
    if request.form.get("decision") == "deny":
        denied = {"error": "access_denied",
                  "error_description": "The end-user or authorization server denied the request."}
        return _redirect(_with_query(params["redirect_uri"], {**denied, **reply}))
    raw_user = request.form.get("user_id", str(SANDBOX_ADMIN_ID))
    user_id = int(raw_user) if raw_user.isdigit() else 0
    if user_id not in STAFF:
        return _page("Invalid request", "<h1>Invalid request</h1><p>Unknown user.</p>", 400)
    code = _zendesk().authorize(client_id=params["client_id"], redirect_uri=params["redirect_uri"],
                                scope=" ".join(params["scope"].split()),
                                code_challenge=params["code_challenge"], user_id=user_id)
    return _redirect(_with_query(params["redirect_uri"], {"code": code, **reply}))


def _redirect(location: str) -> Response:
    response = Response("", 302)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response


def _consent_page(params: Mapping[str, str]) -> Response:
    hidden = "".join(f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
                     for name, value in params.items())
    admin = STAFF[SANDBOX_ADMIN_ID]
    scope = html.escape(" ".join(params["scope"].split()) or DEFAULT_SCOPE)
    others = "".join(
        f'<button type="submit" name="user_id" value="{user.id}">Approve as agent {user.id} '
        f"({html.escape(user.name)}{', assigned tickets only' if user.ticket_restriction else ''})"
        "</button>" for user in STAFF.values() if user.role == "agent")
    body = (
        f"<h1>Allow Order Truth to access {SANDBOX_ZENDESK_SUBDOMAIN}?</h1>"
        f"<p>Order Truth is requesting <strong>{scope}</strong> access to your Zendesk account."
        "</p><p><em>Sandbox: choose which user approves.</em></p>"
        f'<form method="post" action="{html.escape(request.path)}">{hidden}'
        f'<button type="submit" name="user_id" value="{admin.id}">Allow '
        f"(as {html.escape(admin.name)}, admin {admin.id})</button>{others}"
        '<button type="submit" name="decision" value="deny">Deny</button></form>'
    )
    return _page(f"Allow Order Truth to access {SANDBOX_ZENDESK_SUBDOMAIN}?", body)


@zendesk_api.post("/oauth/tokens")
def tokens() -> Response:
    """Exchange an authorization code (+ PKCE verifier) for an access token."""
    body = request.get_json(silent=True)
    params = body if isinstance(body, dict) else request.form.to_dict()
    if params.get("grant_type") == "refresh_token":
        response = _json(_zendesk().refresh(params))
    else:
        response = _json(_zendesk().exchange_code(params))
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- sandbox control


def _control_error(message: str) -> Response:
    return _json({"error": message}, 400)


@zendesk_control.get("/faults")
def read_faults() -> Response:
    """The Zendesk faults now in force."""
    return _json(_zendesk().faults.snapshot())


@zendesk_control.post("/faults")
def set_faults() -> Response:
    """Set faults from {"fault": FaultSpec|null, "fail_next": {...}, "fail_after_write": {...}}."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _control_error('expected a JSON object such as {"fail_next": {"count": 1}}')
    unknown = set(body) - {"fault", "fail_next", "fail_after_write"}
    if unknown:
        return _control_error(f"unknown key(s): {', '.join(sorted(unknown))}")
    try:
        spec = FaultSpec.from_json(body["fault"]) if body.get("fault") is not None else None
        before = _failure(body.get("fail_next"), {"count", "status", "retry_after"})
        after = _failure(body.get("fail_after_write"), {"count", "status", "drop"})
    except (TypeError, ValueError) as exc:
        return _control_error(str(exc))
    faults = _zendesk().faults
    if "fault" in body:
        if spec is None:
            faults.clear_spec()
        else:
            faults.set(spec)
    if before is not None:
        faults.fail_next(before.count, before.status, retry_after=before.retry_after)
    if after is not None:
        faults.fail_after_write(after.count, after.status, drop=after.drop)
    return read_faults()


def _failure(data: Any, allowed: set[str]) -> WriteFailure | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"expected an object like {{\"count\": 1, \"status\": 500}}, got {data!r}")
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    return WriteFailure(**data)


@zendesk_control.delete("/faults")
def clear_faults() -> Response:
    """Clear every Zendesk fault."""
    _zendesk().faults.clear()
    return read_faults()


@zendesk_control.post("/launch")
def sign_launch() -> Response:
    """A freshly signed launch JWT ({"token"}), for a helpdesk page in another process."""
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict) or set(body) - {"installation_id", "subdomain", "ttl"}:
        return _control_error('expected an optional object {"installation_id", "subdomain", "ttl"}')
    ttl = body.get("ttl", 300)
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        return _control_error(f"ttl must be an integer, got {ttl!r}")
    token = _zendesk().sign_launch(
        installation_id=str(body.get("installation_id", SANDBOX_ZENDESK_INSTALLATION_ID)),
        subdomain=str(body.get("subdomain", SANDBOX_ZENDESK_SUBDOMAIN)), ttl=ttl)
    response = _json({"token": token})
    response.headers["Cache-Control"] = "no-store"
    return response


@zendesk_control.get("/tickets")
def inspect_tickets() -> Response:
    """Every ticket with its comments and tags."""
    return _json({"tickets": _zendesk().tickets()})


@zendesk_control.get("/tickets/<int:ticket_id>")
def inspect_ticket(ticket_id: int) -> Response:
    """One ticket with its comments and tags."""
    found = _zendesk().ticket(ticket_id)
    if found is None:
        return _json({"error": f"no ticket {ticket_id}"}, 404)
    return _json({"ticket": found})
