"""The settings page's sections an admin uses to control actions and lookups: every field
validated, bad values named and nothing saved, empty where empty means something."""

from __future__ import annotations

import json
import re

from tests.conftest import repo_of

from .test_zendesk_admin import KEY, oauth_sign_in

PAGE = f"/zendesk/settings?installation={KEY}"


def form(client) -> tuple[str, dict[str, str]]:
    """The settings form's CSRF value and every setting's current value, as a browser has them."""
    html = client.get(PAGE).get_data(as_text=True)
    start = html.index('action="/zendesk/settings/options"')
    part = html[start:html.index("</form>", start)]
    values = dict(re.findall(r'<input name="([a-z_]+)" value="([^"]*)"', part))
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1), values


def save(client, **changes):
    csrf, values = form(client)
    return client.post("/zendesk/settings/options", follow_redirects=True,
                       data={**values, **changes, "csrf": csrf, "installation": KEY})


def stored(app):
    with repo_of(app) as repo:
        return repo.find(KEY).settings


def test_the_page_shows_each_section(client):
    oauth_sign_in(client)
    html = client.get(PAGE).get_data(as_text=True)
    for section in ("How orders are read", "Flag windows and tolerances", "Refunds",
                    "Resolving tickets"):
        assert f"<h2>{section}</h2>" in html
    for name in ("order_id_field_id", "order_id_shape", "lookup_deadline_seconds",
                 "cache_seconds", "timezone", "resolve_refunded_status",
                 "resolve_field_id", "refund_cap_agent_minor"):
        assert f'name="{name}"' in html
    assert "Let agents resolve the ticket" in html


def test_an_outcome_can_be_told_to_leave_the_status_alone(app, client):
    oauth_sign_in(client)
    page = save(client, resolve_refunded_status="", resolve_refunded_tags="paid-back, done",
                lookup_deadline_seconds="2", cache_seconds="0", order_id_field_id="360001")
    assert "Settings saved." in page.get_data(as_text=True)
    settings = stored(app)
    refunded = settings["actions"]["resolve"]["outcomes"]["refunded"]
    assert refunded["status"] == "" and refunded["tags"] == "paid-back, done"
    assert settings["lookup"] == {"deadline_seconds": 2.0, "cache_seconds": 0}
    assert settings["order_id_field_id"] == 360001
    # Other outcomes kept their defaults; the refund caps were not touched.
    assert form(client)[1]["resolve_refund_pending_status"] == "pending"


def test_bad_values_are_named_and_nothing_is_saved(app, client):
    oauth_sign_in(client)
    before = stored(app)
    page = save(client, resolve_refunded_status="closed", resolve_refunded_tags="Has Spaces",
                lookup_deadline_seconds="90", cache_seconds="-1", order_id_field_id="abc",
                timezone="Europe/Berlin").get_data(as_text=True)
    assert "Not saved" in page
    for said in ("One of open, pending, solved", "Tags separated by commas",
                 "Longest wait for the systems", "How long an answer is reused",
                 "Ticket field that holds the order ID"):
        assert said in page, said
    assert stored(app) == before  # the good time zone wasn't saved either


def test_every_new_setting_is_settable_from_the_cli(app, runner):
    for name, value in (("resolve_roles", "admin"), ("resolve_needs_attention_status", "open"),
                        ("resolve_refunded_field", "paid back"), ("cache_seconds", "45"),
                        ("lookup_deadline_seconds", "1.5"), ("resolve_refunded_status", "")):
        out = runner.invoke(args=["settings", "set", name, value, "--installation", KEY])
        assert out.exit_code == 0, (name, out.output)
    shown = json.loads(runner.invoke(args=["settings", "show", "--json", "--installation",
                                           KEY]).output)
    assert (shown["resolve_roles"], shown["resolve_needs_attention_status"],
            shown["resolve_refunded_field"], shown["cache_seconds"],
            shown["lookup_deadline_seconds"], shown["resolve_refunded_status"]) == (
        "admin", "open", "paid back", 45, 1.5, "")
    bad = runner.invoke(args=["settings", "set", "resolve_roles", "owner", "--installation", KEY])
    assert bad.exit_code == 2


def test_stores_the_erp_names_otherwise_are_saved_checked_and_read(app, client):
    oauth_sign_in(client)
    html = client.get(PAGE).get_data(as_text=True)
    assert "<h2>Stores</h2>" in html and 'name="store_locations"' in html
    bad = save(client, store_locations="Brooklyn Store = BK01; SoHo = bk01").get_data(
        as_text=True)
    assert "Not saved" in bad and "The ERP name “bk01” is given twice." in bad
    good = save(client, store_locations="Brooklyn Store = BK01 Brooklyn Retail")
    assert "Settings saved." in good.get_data(as_text=True)
    with repo_of(app) as repo:
        tenant = repo.find(KEY)
    assert tenant.reconcile_settings.store_locations == (("Brooklyn Store",
                                                          "BK01 Brooklyn Retail"),)
    # Emptied again, every store has the same name in both.
    save(client, store_locations="")
    with repo_of(app) as repo:
        assert repo.find(KEY).reconcile_settings.store_locations == ()
