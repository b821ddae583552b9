"""The Zendesk app package: the shipped manifest, each rule, the built zip and `flask zendesk package`."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from plugin.hosts.zendesk.cli import zendesk_cli
from plugin.hosts.zendesk.package import (
    MANIFEST_DIR,
    PLACEHOLDER,
    InvalidBaseUrl,
    InvalidPackage,
    build_package,
    check_base_url,
    png_size,
    read_package_dir,
    validate_package,
)

BASE = "https://truth.example.com"


def tiny_png(width: int, height: int) -> bytes:
    """A valid single-colour RGBA PNG of the given size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\0" + b"\x0d\x94\x88\xff" * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def files() -> dict[str, bytes]:
    return read_package_dir(MANIFEST_DIR)


def with_manifest(files: dict[str, bytes], change: Callable[[dict[str, Any]], None]) -> dict[str, bytes]:
    manifest = json.loads(files["manifest.json"])
    change(manifest)
    return {**files, "manifest.json": json.dumps(manifest).encode()}


def param(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in manifest["parameters"] if p["name"] == name)


def add_param(manifest: dict[str, Any], **fields: Any) -> None:
    manifest["parameters"].append(fields)


def sidebar(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["location"]["support"]["ticket_sidebar"]


def token_not_secure(manifest: dict[str, Any]) -> None:
    token = param(manifest, "zendesk_api_token")
    del token["secure"], token["scopes"]


def test_shipped_manifest_dir_validates_clean(files):
    assert validate_package(files) == []
    assert sorted(files) == ["assets/logo-small.png", "assets/logo.png", "manifest.json",
                             "translations/en.json"]


def test_shipped_manifest_has_the_settings_the_sidebar_reads(files):
    manifest = json.loads(files["manifest.json"])
    params = {p["name"]: p for p in manifest["parameters"]}
    assert params["order_id_field_id"]["type"] == "number"
    # Ticket text is searched on the server, with the installation's order-number shape.
    assert "order_id_pattern" not in params
    assert params["zendesk_api_token"]["secure"] is True
    assert params["zendesk_api_token"]["scopes"] == ["header"]
    assert manifest["location"]["support"]["ticket_sidebar"]["url"] == f"{PLACEHOLDER}/zendesk/sidebar"


@pytest.mark.parametrize(("change", "expected"), [
    (lambda m: m.pop("author"), "author is required"),
    (lambda m: m["author"].pop("email"), "author.email is required"),
    (lambda m: m["author"].update(url="ftp://order-truth.example"), "author.url must start with http"),
    (lambda m: m.pop("defaultLocale"), "defaultLocale is required"),
    (lambda m: m.pop("location"), "location is required"),
    (lambda m: sidebar(m).update(url="http://truth.example.com/sidebar"),
     "location.support.ticket_sidebar.url 'http://truth.example.com/sidebar' must be an absolute https"),
    (lambda m: m["location"]["support"].update(ticket_sidebar="zendesk/sidebar"),
     "must be an absolute https URL or a file under assets/"),
    (lambda m: sidebar(m).update(url="http://localhost:5000/sidebar"), "localhost is only for development"),
    (lambda m: sidebar(m).update(flexible="yes"), "ticket_sidebar.flexible must be true or false"),
    (lambda m: m.update(signedUrls="true"), "signedUrls must be true or false"),
    (lambda m: m.pop("frameworkVersion"), "frameworkVersion is required"),
    (lambda m: m.update(frameworkVersion="1.0"), "frameworkVersion must be '2.0'"),
    (lambda m: param(m, "order_id_field_id").update(type="secure"), "unknown type 'secure'"),
    (lambda m: param(m, "zendesk_api_token").pop("scopes"), "'zendesk_api_token' is secure but has no scope"),
    (lambda m: param(m, "zendesk_api_email").update(scopes=["header"]),
     "'zendesk_api_email' has scopes but is not secure"),
    (lambda m: param(m, "zendesk_api_token").update(scopes=["header", "cookie"]),
     "'zendesk_api_token' has invalid scopes 'cookie'"),
    (lambda m: add_param(m, name="name", type="text"), 'may not be named "name"'),
    (lambda m: add_param(m, name="brand", type="hidden", required=True), "'brand' is hidden, so it can"),
    (token_not_secure, "'zendesk_api_token' looks like a credential"),
    (lambda m: add_param(m, name="loop_api_key", type="text"), "'loop_api_key' looks like a credential"),
    (lambda m: add_param(m, name="order_id_field_id", type="text"), "repeat the names order_id_field_id"),
    (lambda m: add_param(m, name="zendesk", type="oauth"), "needs a manifest oauth block with client_id"),
    (lambda m: add_param(m, name="brand", type="text", required="yes"), "required must be true or false"),
])
def test_each_manifest_rule_names_the_problem(files, change, expected):
    problems = validate_package(with_manifest(files, change))
    assert any(expected in problem for problem in problems), problems


def test_secure_param_without_scopes_is_refused_though_zendesk_only_warns(files):
    problems = validate_package(with_manifest(files, lambda m: param(m, "zendesk_api_token").pop("scopes")))
    assert problems == ["parameter 'zendesk_api_token' is secure but has no scopes "
                        '(list where the proxy may insert it, e.g. ["header"])']


def test_location_url_from_a_setting_is_not_checked(files):
    files = with_manifest(files, lambda m: sidebar(m).update(url="{{setting.server}}/sidebar"))
    assert validate_package(files) == []


def test_localhost_location_is_allowed_only_for_development(files):
    files = with_manifest(files, lambda m: sidebar(m).update(url="http://localhost:5000/sidebar"))
    assert validate_package(files, allow_localhost=True) == []
    assert validate_package(files) != []


def test_missing_manifest_and_nested_manifest(files):
    manifest = files.pop("manifest.json")
    assert validate_package(files) == ["manifest.json is missing from the package root"]
    files["order-truth/manifest.json"] = manifest
    assert validate_package(files) == [
        "manifest.json must be at the package root, not order-truth/manifest.json"]


def test_manifest_with_duplicate_keys_is_refused(files):
    files["manifest.json"] = files["manifest.json"].replace(b'"private": false,', b'"private": false,' * 2)
    assert validate_package(files) == ["manifest.json is not valid JSON: duplicate keys private"]


def test_missing_default_locale_translation_file(files):
    del files["translations/en.json"]
    assert validate_package(files) == [
        "translations/en.json is missing (the default locale's translation file)"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda app: app["parameters"].pop("zendesk_api_token"), "needs app.parameters.zendesk_api_token.label"),
    (lambda app: app["parameters"]["order_id_field_id"].pop("label"),
     "needs app.parameters.order_id_field_id.label"),
    (lambda app: app.pop("name"), "needs app.name"),
    (lambda app: app.pop("short_description"), "needs app.short_description"),
    (lambda app: app.pop("long_description"), "needs app.long_description"),
    (lambda app: app.pop("installation_instructions"), "needs app.installation_instructions"),
])
def test_default_locale_needs_app_strings_and_parameter_labels(files, change, expected):
    translations = json.loads(files["translations/en.json"])
    change(translations["app"])
    files["translations/en.json"] = json.dumps(translations).encode()
    assert validate_package(files) == [f"translations/en.json {expected}"]


def test_translation_strings_may_use_the_value_title_form_and_description(files):
    translations = json.loads(files["translations/en.json"])
    app = translations["app"]
    app["description"] = app.pop("short_description")
    app["parameters"]["order_id_field_id"]["label"] = {"value": "Order ID ticket field",
                                                       "title": "setting label"}
    files["translations/en.json"] = json.dumps(translations).encode()
    assert validate_package(files) == []


@pytest.mark.parametrize("name", ["translations/english.json", "translations/en_US.json",
                                  "translations/en.txt"])
def test_translation_file_names_must_be_locales(files, name):
    files[name] = b"{}"
    assert any(problem.startswith(f"{name} is not named") for problem in validate_package(files))


@pytest.mark.parametrize(("path", "image", "expected"), [
    ("assets/logo.png", tiny_png(256, 256), "assets/logo.png is 256x256; it must be 320x320"),
    ("assets/logo-small.png", tiny_png(128, 64), "assets/logo-small.png is 128x64; it must be 128x128"),
    ("assets/logo.png", b"GIF89a not a png at all", "assets/logo.png is not a PNG"),
    ("assets/logo-small.png", None, "assets/logo-small.png is missing"),
])
def test_logos_must_be_pngs_of_the_exact_size(files, path, image, expected):
    if image is None:
        del files[path]
    else:
        files[path] = image
    problems = validate_package(files)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize("name", ["../manifest.json", "/etc/passwd", "assets/../../x", "assets\\logo.png"])
def test_paths_escaping_the_package_root_are_refused(files, name):
    files[name] = b"x"
    assert f"{name!r} is not a plain relative path inside the package" in validate_package(files)


def test_symlinks_in_the_manifest_dir_are_refused(tmp_path):
    for name, data in read_package_dir(MANIFEST_DIR).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "assets" / "extra.png").symlink_to(tmp_path / "assets" / "logo.png")
    with pytest.raises(InvalidPackage) as caught:
        read_package_dir(tmp_path)
    assert caught.value.problems == [
        "assets/extra.png is a symlink; Zendesk rejects packages containing symlinks"]


def test_build_package_writes_a_zip_pointing_at_the_base_url(tmp_path):
    output = build_package(BASE + "/", tmp_path / "out" / "app.zip")

    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        translations = json.loads(archive.read("translations/en.json"))
        logos = {name: png_size(archive.read(name)) for name in ("assets/logo.png", "assets/logo-small.png")}
    assert names == sorted(names) == ["assets/logo-small.png", "assets/logo.png", "manifest.json",
                                      "translations/en.json"]
    assert manifest["location"]["support"]["ticket_sidebar"] == {
        "url": f"{BASE}/zendesk/sidebar", "flexible": True, "signed": True,
    }
    assert manifest["remoteInstallationURL"] == f"{BASE}/zendesk/install"
    assert manifest["domainWhitelist"] == ["truth.example.com"]
    assert manifest["author"]["url"] == PLACEHOLDER  # the vendor's site, not the server's
    assert translations["app"]["name"] == "Order Truth"
    assert logos == {"assets/logo.png": (320, 320), "assets/logo-small.png": (128, 128)}


def test_build_package_is_byte_for_byte_reproducible(tmp_path):
    first = build_package(BASE, tmp_path / "a.zip").read_bytes()
    second = build_package(BASE, tmp_path / "b.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_build_package_for_localhost_development(tmp_path):
    output = build_package("http://localhost:5000", tmp_path / "dev.zip", allow_localhost=True)
    with zipfile.ZipFile(output) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["location"]["support"]["ticket_sidebar"]["url"] == "http://localhost:5000/zendesk/sidebar"
    assert manifest["domainWhitelist"] == ["localhost"]


def test_build_package_rewrites_string_locations_and_leaves_urlless_ones_alone(tmp_path):
    source = tmp_path / "src"
    for name, data in read_package_dir(MANIFEST_DIR).items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    manifest = json.loads((source / "manifest.json").read_bytes())
    manifest["location"]["support"]["new_ticket_sidebar"] = f"{PLACEHOLDER}/zendesk/new-ticket"
    manifest["location"]["support"]["background"] = {"autoLoad": False}
    (source / "manifest.json").write_text(json.dumps(manifest))

    with zipfile.ZipFile(build_package(BASE, tmp_path / "app.zip", manifest_dir=source)) as archive:
        support = json.loads(archive.read("manifest.json"))["location"]["support"]
    assert support["new_ticket_sidebar"] == f"{BASE}/zendesk/new-ticket"
    assert support["background"] == {"autoLoad": False}


def test_build_package_refuses_an_invalid_manifest_dir(tmp_path):
    for name, data in read_package_dir(MANIFEST_DIR).items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_bytes(data)
    (tmp_path / "src" / "assets" / "logo.png").write_bytes(tiny_png(100, 100))
    with pytest.raises(ValueError, match="assets/logo.png is 100x100"):
        build_package(BASE, tmp_path / "app.zip", manifest_dir=tmp_path / "src")
    assert not (tmp_path / "app.zip").exists()


@pytest.mark.parametrize(("base_url", "expected"), [
    ("http://truth.example.com", "must use https"),
    ("truth.example.com", "must be an absolute https URL"),
    ("ftp://truth.example.com", "must be an absolute https URL"),
    ("https://truth.example.com/app", "no path, query or fragment"),
    ("https://truth.example.com/?x=1", "no path, query or fragment"),
    ("https://truth.example.com/#top", "no path, query or fragment"),
    ("https://user:pw@truth.example.com", "must not contain a user name or password"),
    ("https://truth.example.com:99999", "invalid port"),
    ("https://localhost:5000", "is a local address"),
    ("http://localhost:5000", "is a local address"),
    ("https://order-truth.example", "is the placeholder"),
])
def test_bad_base_urls_are_rejected(tmp_path, base_url, expected):
    with pytest.raises(InvalidBaseUrl, match=expected):
        build_package(base_url, tmp_path / "app.zip")
    assert not (tmp_path / "app.zip").exists()


def test_http_loopback_ip_is_refused_even_for_development():
    with pytest.raises(InvalidBaseUrl, match="only for the host name localhost"):
        check_base_url("http://127.0.0.1:5000", allow_localhost=True)


@pytest.mark.parametrize(("base_url", "allow_localhost", "expected"), [
    ("https://Truth.Example.com/", False, "https://truth.example.com"),
    ("https://truth.example.com:8443", False, "https://truth.example.com:8443"),
    ("http://localhost:5000/", True, "http://localhost:5000"),
    ("https://127.0.0.1:5443", True, "https://127.0.0.1:5443"),
])
def test_good_base_urls_are_normalised(base_url, allow_localhost, expected):
    assert check_base_url(base_url, allow_localhost=allow_localhost) == expected


@pytest.fixture
def runner():
    app = Flask(__name__)
    app.cli.add_command(zendesk_cli)
    return app.test_cli_runner()


def test_cli_package_writes_the_zip_and_prints_the_sidebar_url(runner, tmp_path):
    output = tmp_path / "order-truth-zendesk.zip"
    result = runner.invoke(args=["zendesk", "package", "--base-url", BASE, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {output}\nticket sidebar: {BASE}/zendesk/sidebar\n"
    assert zipfile.ZipFile(output).testzip() is None


def test_cli_package_rejects_a_bad_base_url(runner, tmp_path):
    output = tmp_path / "app.zip"
    result = runner.invoke(args=["zendesk", "package", "--base-url", "http://truth.example.com",
                                 "--output", str(output)])
    assert result.exit_code == 2
    assert "Invalid value for --base-url" in result.output and "must use https" in result.output
    assert not output.exists()
