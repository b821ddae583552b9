"""Built-in sandbox: simulated upstream APIs speaking the real dialects, plus seeded scenarios.

Optional: the app imports this package only when SANDBOX_ENABLED is on, and a production
install can leave it out. Everything it adds is ordinary data — installations whose
connections point at the simulated vendors — and its own pages.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask


def install(app: Flask) -> None:
    """Plug the sandbox into `app`.

    Serves the pretend helpdesk (also the front page), seeds the sandbox installations at
    start-up, and points the Zendesk host's OAuth at the simulated Zendesk unless a real
    OAuth client is configured.
    """
    from .seed import seed
    from .views import bp, widget_bp
    from .zendesk import SANDBOX_OAUTH_CLIENT_ID, SANDBOX_OAUTH_CLIENT_SECRET

    if not app.config.get("ZENDESK_OAUTH_CLIENT_ID"):
        app.config["ZENDESK_OAUTH_CLIENT_ID"] = SANDBOX_OAUTH_CLIENT_ID
        app.config["ZENDESK_OAUTH_CLIENT_SECRET"] = SANDBOX_OAUTH_CLIENT_SECRET
    app.config["HOME_ENDPOINT"] = "sandbox_pages.tickets"
    app.register_blueprint(bp)
    app.register_blueprint(widget_bp)
    app.extensions["seeders"].append(lambda repo: seed(repo, sandbox_url(app.config)))


def sandbox_url(config: dict[str, object]) -> str:
    """Where the simulated vendors are served: SANDBOX_URL, else an in-process server."""
    from .server import get_sandbox

    if config.get("SANDBOX_URL"):
        return str(config["SANDBOX_URL"])
    return get_sandbox(int(str(config.get("SANDBOX_PORT") or 0)),
                       zendesk_token_secret(config)).url


def zendesk_token_secret(config: dict[str, object]) -> bytes:
    """What the sandbox's Zendesk signs OAuth tokens with: derived from the app's SECRET_KEY
    (kept in instance/ by default), so after a restart it still accepts the tokens the app
    stored - the admin's connection and the agents' sign-ins."""
    return hmac.new(str(config.get("SECRET_KEY") or "").encode(), b"sandbox-zendesk-tokens",
                    hashlib.sha256).digest()
