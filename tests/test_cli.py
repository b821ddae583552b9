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
