"""Configured credentials never reach an agent's screen or a log line, whatever echoes them."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

from plugin.connectors.base import ApiClient, BadResponseError, ConnectorConfig
from plugin.core.model import OrderRef, SourceName
from plugin.fanout import FanOut
from plugin.logs import RedactSecrets, redact, remember_secrets

ORDER = OrderRef("1001", "#1001")
KEY = "ns_tok_9f8e7d6c5b4a39281706"  # no recognisable shape: only its value can catch it


class Echoing(ApiClient):
    """An upstream that echoes the credential it was sent into a field it got wrong."""

    system = "netsuite"

    def __init__(self):
        super().__init__(ConnectorConfig("https://x.example", {"token_secret": KEY}))

    def fetch(self, order):
        raise BadResponseError(f"unexpected netsuite response: status: bad value '{KEY}'",
                               system="netsuite")

    def close(self):
        pass


def test_an_upstream_echoing_the_credential_shows_it_redacted():
    fan = FanOut(4, clock=lambda: datetime(2026, 3, 10, tzinfo=UTC))
    try:
        asked = fan.start(ORDER, {SourceName.ERP: ("netsuite", Echoing())}, deadline=1)
        (_, result), = list(asked.as_completed())
    finally:
        fan.shutdown()
    assert KEY not in (result.report.error or "")
    assert "[redacted]" in result.report.error


def test_a_known_credential_is_redacted_from_every_log_line():
    remember_secrets([KEY])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    try:
        log.warning("upstream said %s", f"token={KEY[:3]}… no: {KEY}")
    finally:
        log.removeHandler(handler)
    assert KEY not in stream.getvalue() and "[redacted]" in stream.getvalue()
    assert redact(f"x {KEY} y") == "x [redacted] y"


def test_debug_mode_handlers_redact_too(tmp_path, monkeypatch):
    from flask.logging import default_handler

    from plugin.app import create_app

    # Flask's handler is shared by the process: start it clean, so only this app's set-up
    # can have attached the filter.
    monkeypatch.setattr(default_handler, "filters", [])
    app = create_app({"DEBUG": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
                      "SECRET_KEY": "debug-secret-value"})
    try:
        assert any(isinstance(f, RedactSecrets) for f in default_handler.filters)
        assert redact("cookie signed with debug-secret-value") == "cookie signed with [redacted]"
    finally:
        app.extensions["order_truth"].close()
        app.extensions["store"].dispose()


def test_a_tenants_decrypted_credentials_are_known_to_the_log_filter(app):
    from tests.conftest import repo_of

    with repo_of(app) as repo:
        tenant = repo.find("sandbox")
    secrets = [v for c in tenant.connections.values() for v in c.credentials.values()
               if len(v) >= 6]
    assert secrets
    assert all(redact(f"echo {s}") == "echo [redacted]" for s in secrets)
