"""Operator commands for installations and Zendesk."""

from __future__ import annotations

import zipfile

from sqlalchemy import select

from plugin.store.models import Connection


def test_add_configure_list_and_remove_a_zendesk_installation(app, runner):
    out = runner.invoke(args=["installations", "add-zendesk", "--subdomain", "acme",
                              "--installation-id", "42"])
    assert out.exit_code == 0 and out.output.strip() == "zendesk:acme:42"
    cfg = runner.invoke(args=["installations", "configure", "zendesk:acme:42", "--source",
                              "processor", "--system", "stripe", "--credential", "secret_key=-"],
                        input="sk_live_from_stdin\n")
    assert cfg.exit_code == 0, cfg.output
    assert "sk_live_from_stdin" not in cfg.output
    with app.extensions["store"].session() as s:
        row = s.scalar(select(Connection).where(Connection.source == "processor"))
        assert "sk_live_from_stdin" not in row.credentials_encrypted
        assert app.extensions["secret_box"].open(row.credentials_encrypted) == {
            "secret_key": "sk_live_from_stdin"}
    listed = runner.invoke(args=["installations", "list"]).output
    assert "zendesk:acme:42" in listed and "processor" in listed
    gone = runner.invoke(args=["installations", "remove", "zendesk:acme:42", "--yes"])
    assert gone.exit_code == 0
    assert "zendesk:acme:42" not in runner.invoke(args=["installations", "list"]).output


def test_configure_rejects_a_connector_for_the_wrong_source(runner):
    runner.invoke(args=["installations", "add-zendesk", "--subdomain", "acme", "--installation-id", "1"])
    out = runner.invoke(args=["installations", "configure", "zendesk:acme:1", "--source", "erp",
                              "--system", "stripe", "--credential", "secret_key=x"])
    assert out.exit_code == 2 and "not a erp connector" in out.output


def test_add_zendesk_validates_input(runner):
    out = runner.invoke(args=["installations", "add-zendesk", "--subdomain", "Bad Name",
                              "--installation-id", "1"])
    assert out.exit_code == 2


def test_package_command_writes_upload_ready_zip(runner, tmp_path):
    target = tmp_path / "app.zip"
    out = runner.invoke(args=["zendesk", "package", "--base-url", "https://truth.acme.example",
                              "--output", str(target)])
    assert out.exit_code == 0, out.output
    with zipfile.ZipFile(target) as zf:
        manifest = zf.read("manifest.json").decode()
    assert "https://truth.acme.example/zendesk/sidebar" in manifest


def test_retry_pending_command(runner):
    out = runner.invoke(args=["zendesk", "retry-pending"])
    assert out.exit_code == 0 and "0 pending write(s) completed" in out.output


def test_settings_show_and_set_with_validation(runner):
    import json

    shown = json.loads(runner.invoke(args=["settings", "show", "--json"]).output)
    assert shown["timezone"] == "UTC" and shown["order_name_prefix"] == "#"

    ok = runner.invoke(args=["settings", "set", "timezone", "America/New_York"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(runner.invoke(args=["settings", "show", "--json"]).output)[
        "timezone"] == "America/New_York"

    for name, value, says in [("timezone", "Mars/Olympus", "IANA"),
                              ("order_id_shape", "(a+)+", "nested"),
                              ("return_sync_lag_hours", "10000", "less than or equal"),
                              ("colour", "red", "Unknown setting")]:
        bad = runner.invoke(args=["settings", "set", name, value])
        assert bad.exit_code == 2 and says in bad.output, bad.output
    # Nothing invalid was saved.
    assert json.loads(runner.invoke(args=["settings", "show", "--json"]).output)[
        "timezone"] == "America/New_York"


def test_merchant_time_zone_changes_the_dates_told_to_the_customer(runner):
    import json

    runner.invoke(args=["settings", "set", "timezone", "Pacific/Kiritimati"])
    record = json.loads(runner.invoke(args=["truth", "1001", "--json"]).output)
    assert "on " in record["headline"]
    runner.invoke(args=["settings", "set", "timezone", "Pacific/Pago_Pago"])
    later = json.loads(runner.invoke(args=["truth", "1001", "--json"]).output)
    # UTC+14 and UTC-11 are a calendar day apart for the same refund.
    assert record["headline"] != later["headline"]


def test_order_name_prefix_is_applied_once(runner):
    import json

    runner.invoke(args=["settings", "set", "order_name_prefix", "EU-"])
    record = json.loads(runner.invoke(args=["truth", "EU-1001", "--json"]).output)
    assert (record["order_number"], record["order_name"]) == ("1001", "EU-1001")
