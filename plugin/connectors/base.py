"""One base client for every upstream: config, typed errors, timeouts, retries, validation."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from plugin.core.model import ErrorKind, OrderRef, SourceFacts, SourceName
from plugin.core.money import Money, MoneyError, normalise_currency

logger = logging.getLogger(__name__)

# Longest vendor message we pass on to an agent; bodies can be pages of HTML or SQL.
_MAX_MESSAGE = 200
# Sleep before retrying a 429/503 that carried no Retry-After (capped by max_retry_after).
_DEFAULT_BACKOFF = 0.5
_SECRET_PATTERNS = (re.compile(r"\b(sk|rk|pk)_(live|test)_[A-Za-z0-9*]+"),
                    re.compile(r"\bshp(at|ca|pa|ss)_[A-Za-z0-9]+"))


@dataclass(frozen=True)
class ConnectorConfig:
    """Where an upstream lives, how to authenticate, and how patient to be with it."""

    base_url: str
    credentials: Mapping[str, str] = field(repr=False)
    connect_timeout: float = 1.0
    read_timeout: float = 2.5
    max_retries: int = 1
    max_retry_after: float = 1.0
    options: Mapping[str, str] = field(default_factory=dict)
    # An answer longer than this is refused while it streams in ("answer too large").
    max_body_bytes: int = 4 * 1024 * 1024


# ---------------------------------------------------------------- errors


class UpstreamError(Exception):
    """An upstream call failed; the message is safe to show an agent."""

    kind: ErrorKind = ErrorKind.BAD_RESPONSE

    def __init__(
        self,
        message: str,
        *,
        system: str,
        http_status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.http_status = http_status
        self.retry_after = retry_after
        self.code = code

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(system={self.system!r}, kind={self.kind.value!r}, "
                f"http_status={self.http_status!r}, message={self.message!r})")


class AuthError(UpstreamError):
    """Credentials were rejected (401/403)."""

    kind = ErrorKind.AUTH


class NotFoundError(UpstreamError):
    """The upstream has no such resource."""

    kind = ErrorKind.NOT_FOUND


class RateLimitedError(UpstreamError):
    """The upstream asked us to slow down; retry_after says for how long, if known."""

    kind = ErrorKind.RATE_LIMITED


class UpstreamTimeout(UpstreamError):
    """No connection or no answer within the configured timeouts."""

    kind = ErrorKind.TIMEOUT


class UnavailableError(UpstreamError):
    """The upstream could not be reached or answered 5xx."""

    kind = ErrorKind.UNAVAILABLE


class BadResponseError(UpstreamError):
    """The upstream answered something we cannot use (status, body or schema)."""

    kind = ErrorKind.BAD_RESPONSE


class RejectedError(BadResponseError):
    """The upstream understood a write and refused it in its answer (GraphQL userErrors, or
    a GraphQL error raised before anything ran): nothing was done, so nothing is unsure."""


class NotSentError(UpstreamError):
    """A write was never sent: a read it needed first failed. Nothing happened upstream."""

    kind = ErrorKind.UNAVAILABLE


class ConfigError(UpstreamError):
    """The connector is not configured well enough to call the upstream."""

    kind = ErrorKind.CONFIG


def safe_message(text: object, secrets: tuple[str, ...] = ()) -> str:
    """Shorten a vendor message to one line and scrub anything that looks like a credential."""
    out = " ".join(str(text).split())
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "[redacted]")
    for pattern in _SECRET_PATTERNS:
        out = pattern.sub("[redacted]", out)
    if len(out) > _MAX_MESSAGE:
        out = out[: _MAX_MESSAGE - 1] + "…"
    return out


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _provably_unsent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (no TCP connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


# ---------------------------------------------------------------- marshmallow helpers


# Field keywords for a value a vendor may omit or send as null.
OPTIONAL: dict[str, Any] = {"load_default": None, "allow_none": True}


# Characters that reorder or hide text (bidi overrides and isolates, directional marks):
# upstream text must not make "refunded $10" read as something else on an agent's screen.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_TEXT = 1000  # no real id, status or label is longer; a 10 kB field is cut here


def sanitize_text(text: str) -> str:
    """Upstream text as it may be shown: no bidi or control characters, at most MAX_TEXT."""
    text = _CONTROLS.sub("", _BIDI.sub("", text))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class VendorSchema(Schema):
    """Base for vendor body schemas: unknown fields are ignored, known ones are checked, and
    every string loaded is sanitized (no bidi tricks, bounded length)."""

    class Meta:
        unknown = EXCLUDE

    @post_load
    def _sanitize(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: sanitize_text(v) if isinstance(v, str) else v for k, v in data.items()}


class Identifier(fields.Field):  # type: ignore[type-arg]
    """An id sent as a string or an integer; normalised to a non-empty string."""

    default_error_messages = {"invalid": "Not a valid identifier."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        text = str(value).strip()
        if not text:
            raise self.make_error("invalid")
        return text


class CurrencyCode(fields.Field):  # type: ignore[type-arg]
    """An ISO 4217 code in any case; normalised to upper case."""

    default_error_messages = {"invalid": "Not an ISO 4217 currency code."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            return normalise_currency(value)
        except MoneyError as exc:
            raise self.make_error("invalid") from exc


class DecimalAmount(fields.Decimal):
    """A major-unit amount sent as a decimal string (or an exact JSON number)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, (bool, float)):
            raise self.make_error("invalid")
        if isinstance(value, str) and not value.strip():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class MinorUnits(fields.Integer):
    """An integer amount in minor units (Stripe style)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class WholeNumber(fields.Field):  # type: ignore[type-arg]
    """An integer sent as a number or a numeric string ("2", "2.0"); fractions are invalid."""

    default_error_messages = {"invalid": "Not a whole number."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise self.make_error("invalid")
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError as exc:
            raise self.make_error("invalid") from exc
        if not number.is_finite() or number != number.to_integral_value():
            raise self.make_error("invalid")
        return int(number)


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 (or `format`) timestamp; naive values are taken as UTC; returns UTC."""

    def __init__(self, format: str | None = None, **kwargs: Any) -> None:
        super().__init__(format, default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        return super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)


class UnixTime(fields.Field):  # type: ignore[type-arg]
    """Seconds since the epoch as an integer; returns an aware UTC datetime."""

    default_error_messages = {"invalid": "Not a unix timestamp."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise self.make_error("invalid") from exc


def first_error(messages: Any, path: tuple[str, ...] = ()) -> tuple[str, str]:
    """The first (field path, message) in a marshmallow error tree."""
    if isinstance(messages, Mapping):
        for key, sub in messages.items():
            return first_error(sub, (*path, str(key)))
    if isinstance(messages, (list, tuple)) and messages:
        return first_error(messages[0], path)
    return ".".join(path) or "body", str(messages)


_PLAIN = {
    "Missing data for required field.": "is missing",
    "Field may not be null.": "is empty",
    "Not a valid string.": "should be text",
    "Not a valid integer.": "should be a whole number",
    "Not a valid number.": "should be a number",
    "Not a valid boolean.": "should be true or false",
    "Not a valid datetime.": "should be a date and time",
    "Not a valid date.": "should be a date",
    "Not a valid list.": "should be a list",
    "Invalid input type.": "isn't the kind of data expected",
    "Not a valid mapping type.": "should be an object",
    "Not a valid identifier.": "should be an id",
}


def plain_problem(where: str, why: str) -> str:
    """A schema error in words an agent can read: "data → item 1 → amount should be a number".

    marshmallow's own ("_schema: Invalid input type.") means nothing to an agent; the field
    path stays, so whoever reports it can find the field.
    """
    parts = []
    for segment in where.split("."):
        if segment == "_schema":
            continue
        parts.append(f"item {int(segment) + 1}" if segment.isdigit() else segment)
    field = " → ".join(parts) or "the answer"
    if why.startswith("Must be one of"):
        return f"{field} has a value that isn't one of the known ones"
    if why.startswith("Length must be") or why.startswith("Longer than"):
        return f"{field} is too long or too short"
    return f"{field} {_PLAIN.get(why, why.rstrip('.').lower())}"


# ---------------------------------------------------------------- client


class ApiClient:
    """Shared HTTP plumbing for every upstream API (connectors and helpdesk hosts alike)."""

    system: ClassVar[str]
    required_credentials: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str] = ""

    def __init__(
        self,
        config: ConnectorConfig,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        missing = [
            name for name in self.required_credentials
            if not isinstance(config.credentials.get(name), str)
            or not config.credentials.get(name, "").strip()
        ]
        if missing:
            raise ConfigError(f"missing credential(s): {', '.join(missing)}", system=self.system)
        self.base_url = self._resolve_base_url()
        self._sleep = sleep
        # Monotonic time by which every call must be over (set by the fan-out): requests get
        # only what is left, and no retry starts that can't finish in time.
        self.deadline_at: float | None = None
        self._owns_session = session is None
        self.session = session if session is not None else self._new_session()

    # -- configuration

    def _resolve_base_url(self) -> str:
        url = (self.config.base_url or self.derive_base_url()).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("base URL must be an http(s) URL", system=self.system)
        return url

    def derive_base_url(self) -> str:
        """The vendor's default base URL when config.base_url is empty."""
        if not self.default_base_url:
            raise ConfigError("no base URL configured", system=self.system)
        return self.default_base_url

    @staticmethod
    def _new_session() -> requests.Session:
        session = settle_environment(requests.Session())
        # Retries are ours (status-aware, idempotency-aware); urllib3 must not add its own.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=10, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self.session.close()

    def _secrets(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.config.credentials.values() if v)

    # -- hooks

    def auth_headers(
        self, method: str, url: str, params: Mapping[str, Any] | None
    ) -> dict[str, str]:
        """Headers that authenticate one request (override per vendor)."""
        return {}

    def error_message(self, payload: Any) -> tuple[str | None, str | None]:
        """(code, message) from a vendor error body; override for nested envelopes."""
        if isinstance(payload, Mapping):
            for key in ("message", "error", "errors", "title", "detail"):
                value = payload.get(key)
                if isinstance(value, str) and value.strip():
                    return None, value
        return None, None

    def error_for_status(
        self,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> UpstreamError:
        """The typed error for an HTTP status."""
        if status in (401, 403):
            cls: type[UpstreamError] = AuthError
        elif status == 404:
            cls = NotFoundError
        elif status == 429:
            cls = RateLimitedError
        elif status >= 500:
            cls = UnavailableError
        else:
            cls = BadResponseError
        return cls(message, system=self.system, http_status=status, retry_after=retry_after,
                   code=code)

    def describe(self, status: int, code: str | None, message: str | None) -> str:
        """Agent-safe text for an HTTP failure."""
        text = f"HTTP {status}"
        if code:
            text += f" {code}"
        if message:
            text += f": {message}"
        elif 300 <= status < 400:
            text += ": redirected to another address (not followed)"
        elif status == 429:
            text += ": too many requests (rate limited)"
        return safe_message(text, self._secrets())

    def error_from_response(self, resp: requests.Response) -> UpstreamError:
        """Typed error for a non-2xx response (subclasses parse their error envelope)."""
        code, message = self._error_parts(resp)
        return self.error_for_status(
            resp.status_code,
            self.describe(resp.status_code, code, message),
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            code=code,
        )

    def _error_parts(self, resp: requests.Response) -> tuple[str | None, str | None]:
        try:
            payload = json.loads(resp.content) if resp.content else None
        except (ValueError, RecursionError):
            return None, None
        try:
            code, message = self.error_message(payload)
        except (AttributeError, KeyError, TypeError, ValueError):
            return None, None
        return (str(code) if code is not None else None,
                str(message) if message is not None else None)

    # -- transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        retry_if_unsent: bool = False,
    ) -> requests.Response:
        """Send one logical request: timeouts, typed errors, bounded retries of safe requests."""
        method = method.upper()
        url = self.base_url + path
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "OPTIONS")
        attempts = 1 + max(0, self.config.max_retries)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            connect_timeout, read_timeout = self.config.connect_timeout, self.config.read_timeout
            remaining = self.remaining()
            if remaining is not None:
                if remaining <= 0.01:
                    raise UpstreamTimeout("out of time for this lookup", system=self.system)
                connect_timeout = min(connect_timeout, remaining)
                read_timeout = min(read_timeout, remaining)
            # Rebuilt per attempt: signed auth (OAuth nonce/timestamp) must not be replayed.
            send_headers = {"Accept": "application/json", "User-Agent": "order-truth/0.1"}
            send_headers.update(self.auth_headers(method, url, params))
            send_headers.update(headers or {})
            started = time.monotonic()
            try:
                resp = self._send(requests.Request(
                    method, url, params=params, json=json, data=data, headers=send_headers,
                ).prepare(), (connect_timeout, read_timeout))
            except requests.Timeout as e:
                if retry_if_unsent and not last and _provably_unsent(e):
                    logger.info("%s %s %s: connect timeout, retrying", self.system, method, path)
                    continue
                what = ("connecting" if isinstance(e, requests.ConnectTimeout)
                        else f"waiting for a response ({read_timeout:g}s)")
                raise UpstreamTimeout(f"timed out {what}", system=self.system) from e
            except requests.ConnectionError as e:
                if retry_if_unsent and not last and _provably_unsent(e):
                    logger.info("%s %s %s: not connected, retrying", self.system, method, path)
                    continue
                raise UnavailableError("could not connect", system=self.system) from e
            except requests.RequestException as e:
                raise UnavailableError(
                    f"request failed ({type(e).__name__})", system=self.system
                ) from e
            elapsed_ms = int((time.monotonic() - started) * 1000)
            logger.debug("%s %s %s -> %s in %dms", self.system, method, path,
                         resp.status_code, elapsed_ms)
            if 200 <= resp.status_code < 300:
                return resp
            if idempotent and not last and resp.status_code in (429, 503):
                delay = self._retry_delay(resp)
                budget = self.remaining()
                # Only when the wait leaves most of the lookup's time for the retry itself;
                # otherwise say "rate limited" now rather than "no answer" at the deadline.
                if delay is not None and (budget is None or delay < budget / 2):
                    logger.info("%s %s %s -> %s, retrying in %.2fs", self.system, method,
                                path, resp.status_code, delay)
                    (self._sleep or time.sleep)(delay)
                    continue
            raise self.error_from_response(resp)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _send(self, prepared: requests.PreparedRequest,
               timeout: tuple[float, float]) -> requests.Response:
        """Send straight through the session's pooled adapter.

        Skips what `Session.request` adds per call and these APIs never need: settings
        merging, cookies (never carried between tenants), hooks and redirects (custom auth
        headers would follow a redirect to another host; upstream APIs don't redirect, so a
        3xx is an error like any other non-2xx).
        """
        session = self.session
        verify: bool | str | None = session.verify
        proxies: Any = dict(session.proxies)
        if session.trust_env:  # a proxy is configured: honour it (and no_proxy) per URL
            settings = session.merge_environment_settings(
                prepared.url, proxies, None, verify, session.cert)
            proxies, verify = settings["proxies"], settings["verify"]
        with _cut_at(self.remaining(), self.system):
            resp = session.get_adapter(prepared.url or "").send(
                prepared, stream=True, timeout=timeout,
                verify=True if verify is None else verify, cert=session.cert,
                proxies=proxies)
            self._read_body(resp)
        return resp

    def _read_body(self, resp: requests.Response) -> None:
        """Read the body, refusing one too large or still arriving at the deadline.

        Streamed, so a 50 MB answer is refused at the cap (not held in memory), and a
        server that drips bytes (each read in time, the whole never done) is cut off at
        the lookup's deadline rather than when the socket's per-read timeout says.
        """
        cap = self.config.max_body_bytes
        mb = f"{cap / (1024 * 1024):g} MB"
        try:
            declared = int(resp.headers.get("Content-Length") or 0)
        except ValueError:
            declared = 0
        if declared > cap:
            resp.close()
            raise BadResponseError(f"answer too large ({declared:,} bytes; the limit is {mb})",
                                   system=self.system, http_status=resp.status_code)
        chunks: list[bytes] = []
        size = 0
        try:
            raw = resp.raw
            # read1: whatever has arrived (up to 64 KB), so a drip is checked byte by byte
            # against the deadline instead of waiting for a full block.
            read = raw.read1 if hasattr(raw, "read1") else raw.read
            while chunk := read(64 * 1024, decode_content=True):
                size += len(chunk)
                if size > cap:
                    resp.close()
                    raise BadResponseError(f"answer too large (over {mb})", system=self.system,
                                           http_status=resp.status_code)
                chunks.append(chunk)
                left = self.remaining()
                if left is not None and left <= 0:
                    resp.close()
                    raise UpstreamTimeout("the answer was still arriving at the deadline",
                                          system=self.system)
        except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as e:
            resp.close()
            if isinstance(e, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
                raise UpstreamTimeout("timed out reading the answer", system=self.system) from e
            raise UnavailableError("the connection broke while reading the answer",
                                   system=self.system) from e
        resp._content = b"".join(chunks)
        resp._content_consumed = True  # type: ignore[attr-defined]

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or None when there is none."""
        return None if self.deadline_at is None else self.deadline_at - time.monotonic()

    def _retry_delay(self, resp: requests.Response) -> float | None:
        """Seconds to wait before retrying, or None when the upstream wants longer than we will."""
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if retry_after is None:
            return min(_DEFAULT_BACKOFF, self.config.max_retry_after)
        if retry_after > self.config.max_retry_after:
            return None
        return retry_after

    def _json(self, resp: requests.Response) -> Any:
        """The decoded JSON body (floats as Decimal), or BadResponseError."""
        try:
            return json.loads(resp.content, parse_float=Decimal,
                              parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            ctype = safe_message(resp.headers.get("Content-Type", "none"))[:60]
            if not resp.content.strip():
                what = "an empty answer"
            elif "html" in ctype.lower():
                what = "a web page instead of data"
            else:
                what = "an answer that isn't valid JSON"
            raise BadResponseError(
                f"sent {what} (HTTP {resp.status_code}, Content-Type {ctype})",
                system=self.system, http_status=resp.status_code,
            ) from e

    def load(self, schema: Schema | type[Schema], payload: Any) -> Any:
        """Validate a vendor body with a marshmallow schema; a mismatch is BadResponseError.

        Pass the schema class: its instance is built once per process, not per call.
        """
        if isinstance(schema, type):
            schema = schema_instance(schema)
        try:
            return schema.load(payload)
        except ValidationError as e:
            where, why = first_error(e.messages)
            raise BadResponseError(
                safe_message(f"couldn't read the {self.system} answer: {plain_problem(where, why)}",
                             self._secrets()),
                system=self.system,
            ) from e

    def bad_response(self, message: str) -> BadResponseError:
        """A BadResponseError for a body that validated but cannot be normalised."""
        return BadResponseError(safe_message(f"couldn't read the {self.system} answer: {message}",
                                             self._secrets()), system=self.system)

    def money(self, amount: Decimal | str | int, currency: str) -> Money:
        """Money from a major-unit decimal; unrepresentable values are BadResponseError."""
        try:
            return Money.from_decimal(amount, currency)
        except MoneyError as e:
            raise self.bad_response(str(e)) from e

    def minor(self, amount_minor: int, currency: str) -> Money:
        """Money from minor units; invalid values are BadResponseError."""
        try:
            return Money(amount_minor, currency)
        except MoneyError as e:
            raise self.bad_response(str(e)) from e



def gevent_patched() -> bool:
    """True when gevent has monkey-patched sockets and threads (gunicorn's gevent worker)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency, but optional here
        return False
    return bool(monkey.is_module_patched("socket") and monkey.is_module_patched("threading"))


def _cut_at(remaining: float | None, system: str) -> Any:
    """Under gevent, end the whole call at the deadline whatever the socket does (a server
    dripping its headers a byte at a time never trips a per-read timeout)."""
    if remaining is None or not gevent_patched():
        return contextlib.nullcontext()
    import gevent

    return gevent.Timeout(max(0.01, remaining),
                          UpstreamTimeout("no complete answer by the deadline", system=system))


@functools.cache
def schema_instance(cls: type[Schema]) -> Schema:
    """One instance per schema class (building one costs more than validating a body)."""
    return cls()


_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


def settle_environment(session: requests.Session,
                       environ: Mapping[str, str] | None = None) -> requests.Session:
    """Read the environment's proxy and CA-bundle settings once, not on every call.

    A session that trusts the environment re-reads every variable (and ~/.netrc) per
    request. Only proxies need that (no_proxy is matched per URL); a CA bundle is fixed.
    """
    env = os.environ if environ is None else environ
    session.trust_env = any(k.lower() in _PROXY_VARS and v for k, v in env.items())
    bundle = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    if not session.trust_env and bundle:
        session.verify = bundle
    return session


class BaseClient(ApiClient, ABC):
    """A connector: an ApiClient that reports what one source knows about an order."""

    source: ClassVar[SourceName]
    # The gateway names a shop (Shopify) records this system's payments under, so the
    # shop's copy of a payment or refund the processor made isn't counted twice.
    shop_gateways: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def fetch(self, order: OrderRef) -> SourceFacts:
        """Everything this upstream knows about the order, normalised."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite JSON number {name}")
