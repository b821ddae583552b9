"""Verify a Zendesk signed-URL launch (ZAF JWT, RS256 only) and name the installation it is for."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import jwt.utils
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...connectors.base import UpstreamError
from ...store.models import UsedLaunchToken
from ..base import Launch, LaunchRejected

log = logging.getLogger(__name__)

# aud = https://{subdomain}.zendesk.com/api/v2/apps/installations/{installation_id}.json
_AUD = re.compile(
    r"^https://(?P<sub>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\.zendesk\.com"
    r"/api/v2/apps/installations/(?P<iid>[0-9]{1,20})\.json$"
)
LEEWAY_SECONDS = 30
# Zendesk's tokens are short-lived; anything claiming a longer life is not one of them.
MAX_LIFETIME_SECONDS = 3600
MAX_TOKEN_BYTES = 8192


def installation_key(subdomain: str, installation_id: str) -> str:
    """Our key for one installation of the app in one Zendesk account."""
    return f"zendesk:{subdomain}:{installation_id}"


def expected_audience(subdomain: str, installation_id: str) -> str:
    return f"https://{subdomain}.zendesk.com/api/v2/apps/installations/{installation_id}.json"


@dataclass(frozen=True)
class LaunchTarget:
    """Where to get the verifying key for a launch, decided before the token is trusted."""

    base_url: str
    app_id: str
    allowed_origins: frozenset[str]
    disconnected_message: str | None = None


KeyFetcher = Callable[[str, str, bool], str]
"""(base_url, app_id, refresh) -> PEM public key."""


class SeenTokens:
    """Remembers launch tokens already used (in the database, so every worker agrees)."""

    def __init__(self, db: Session) -> None:
        self.db = db

    def first_use(self, token: str, ttl: int) -> bool:
        now = datetime.now(UTC)
        self.db.execute(delete(UsedLaunchToken).where(UsedLaunchToken.expires_at < now))
        self.db.add(UsedLaunchToken(token_hash=replay_key(token),
                                    expires_at=now + timedelta(seconds=max(ttl, 1))))
        try:
            self.db.commit()
        except IntegrityError:
            self.db.rollback()
            return False
        return True


def replay_key(token: str) -> str:
    """What a launch *is*, whatever its spelling: the verified signature's bytes.

    The JWT library accepts the signature segment with `=` padding (or other characters its
    base64 decoder skips), so the raw string can't key replay protection: `TOKEN==` would
    be a "new" token. Decoded the way the library decodes it, both are the same bytes (and
    RS256 signs each set of claims to exactly one signature).
    """
    signature = token.rsplit(".", 1)[-1].encode()
    try:
        raw = jwt.utils.base64url_decode(signature)
    except (ValueError, TypeError):  # never reached for a verified token; key on the text
        raw = signature
    return hashlib.sha256(raw).hexdigest()


def verify_launch(
    token: str | None,
    *,
    origins: tuple[str, ...],
    target_for: Callable[[str, str], LaunchTarget],
    fetch_key: KeyFetcher,
    seen: SeenTokens | None,
) -> Launch:
    """Check a ZAF launch token; raise LaunchRejected (nothing rendered) on any doubt."""
    if not token or not token.strip():
        raise LaunchRejected("Missing launch token: open Order Truth from a Zendesk ticket.")
    token = token.strip()
    if len(token) > MAX_TOKEN_BYTES:
        raise LaunchRejected("Launch token is too large.")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise LaunchRejected("Launch token is not a valid JWT.") from None
    # Pinned: RS256 only. Never "none", never HS256 (which would let the public key sign).
    if header.get("alg") != "RS256":
        raise LaunchRejected("Launch token uses an algorithm Zendesk does not sign with.")
    aud = unverified.get("aud")
    match = _AUD.match(aud) if isinstance(aud, str) else None
    if match is None:
        raise LaunchRejected("Launch token is not for a Zendesk app installation.")
    subdomain, host_installation_id = match["sub"], match["iid"]

    target = target_for(subdomain, host_installation_id)
    if target.disconnected_message:
        raise LaunchRejected(target.disconnected_message, status=403)

    claims = _decode(token, target, subdomain, host_installation_id, fetch_key)
    if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
        raise LaunchRejected("Launch token lives longer than Zendesk issues them.")
    if not origins:
        raise LaunchRejected("Launch came from no helpdesk page: open Order Truth from a "
                             "Zendesk ticket.")
    if any(_origin(o) not in target.allowed_origins for o in origins):
        raise LaunchRejected("Launch token was sent from a different helpdesk than it names.")
    if seen is not None:
        ttl = int(claims["exp"] - time.time()) + LEEWAY_SECONDS
        if not seen.first_use(token, ttl):
            raise LaunchRejected("This launch was already used; reopen the ticket in Zendesk.")
    return Launch(
        host="zendesk",
        account=subdomain,
        host_installation_id=host_installation_id,
        installation_key=installation_key(subdomain, host_installation_id),
        claims=claims,
    )


def _decode(token, target, subdomain, host_installation_id, fetch_key) -> dict[str, Any]:
    options = {"require": ["exp", "iat", "iss", "aud"]}
    kwargs: dict[str, Any] = dict(
        algorithms=["RS256"],
        audience=expected_audience(subdomain, host_installation_id),
        issuer=f"{subdomain}.zendesk.com",
        leeway=LEEWAY_SECONDS,
        options=options,
    )
    for refresh in (False, True):
        try:
            pem = fetch_key(target.base_url, target.app_id, refresh)
        except UpstreamError as exc:
            log.warning("could not fetch Zendesk app public key: %s", exc)
            raise LaunchRejected("Couldn't reach Zendesk to check this launch; try again.",
                                 status=503) from None
        try:
            return jwt.decode(token, pem, **kwargs)
        except jwt.InvalidSignatureError:
            if refresh:
                raise LaunchRejected("Launch token signature doesn't match the app's key.") from None
            # The app key may have been rotated: fetch it once more before refusing.
            continue
        except jwt.ExpiredSignatureError:
            raise LaunchRejected("Launch token has expired; reopen the ticket.") from None
        except jwt.ImmatureSignatureError:
            raise LaunchRejected("Launch token is issued in the future.") from None
        except jwt.InvalidAudienceError:
            raise LaunchRejected("Launch token is for another installation.") from None
        except jwt.InvalidIssuerError:
            raise LaunchRejected("Launch token was issued by another Zendesk account.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise LaunchRejected(f"Launch token lacks the {exc.claim} claim.") from None
        except jwt.PyJWTError:
            raise LaunchRejected("Launch token is invalid.") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _origin(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[bad"
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()
