"""Operator commands for installations and Zendesk."""

from __future__ import annotations

import json
import zipfile

from sqlalchemy import select

from plugin.store.models import Connection, Installation


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
        acme = s.scalar(select(Installation).where(Installation.key == "zendesk:acme:42"))
        row = s.scalar(select(Connection).where(Connection.source == "processor",
                                                Connection.installation_id == acme.id))
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


def _connected_zendesk_installation(runner, sandbox):
    """A Zendesk installation whose portal is the sandbox's Loop, connected through the CLI."""
    runner.invoke(args=["installations", "add-zendesk", "--subdomain", "acme",
                        "--installation-id", "7"])
    out = runner.invoke(args=["installations", "configure", "zendesk:acme:7", "--source",
                              "portal", "--system", "loop", "--base-url",
                              f"{sandbox.url}/loop/api/v1", "--credential", "api_key=-"],
                        input="sandbox-loop-key\n")
    assert out.exit_code == 0, out.output
    return "zendesk:acme:7"


def test_truth_for_a_connected_installation_reads_its_encrypted_connections(runner, sandbox):
    key = _connected_zendesk_installation(runner, sandbox)
    out = runner.invoke(args=["truth", "1002", "--installation", key, "--json"])
    assert out.exit_code == 0, out.output
    sources = json.loads(out.output)["sources"]
    assert (sources["portal"]["system"], sources["portal"]["status"]) == ("loop", "ok")
    assert sources["processor"]["status"] == "not_configured"


def test_api_for_a_connected_installation_reads_its_encrypted_connections(app, runner, sandbox):
    key = _connected_zendesk_installation(runner, sandbox)
    app.config["API_TOKEN"] = "ops-token"
    resp = app.test_client().get(f"/api/v1/orders/1002?installation={key}",
                                 headers={"Authorization": "Bearer ops-token"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["sources"]["portal"]["status"] == "ok"
