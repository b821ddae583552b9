"""The Zendesk app package: check it against the ZAF v2 manifest rules and build the zip for a base URL."""

from __future__ import annotations

import json
import os
import re
import struct
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PLACEHOLDER = "https://order-truth.example"
MANIFEST_DIR = Path(__file__).resolve().parents[3] / "manifest"

FRAMEWORK_VERSION = "2.0"
PARAMETER_TYPES = frozenset({"text", "checkbox", "url", "number", "multiline", "hidden", "oauth", "mtls"})
SECURE_SCOPES = frozenset({
    "header", "body", "url", "jwt_secret_key", "jwt_claim", "basic_auth_username", "basic_auth_password",
})
OAUTH_FIELDS = ("client_id", "client_secret", "authorize_uri", "access_token_uri")
BOOLEAN_FIELDS = ("private", "signedUrls", "singleInstall", "requirementsOnly", "marketingOnly")
STRING_FIELDS = ("version", "remoteInstallationURL", "termsConditionsURL", "gaID")
LOCATION_BOOLEANS = ("flexible", "signed", "autoLoad", "autoHide")
TRANSLATION_KEYS = ("name", "short_description", "long_description", "installation_instructions")
LOGOS = {"assets/logo.png": 320, "assets/logo-small.png": 128}

LOCALE = re.compile(r"^[a-z]{2,3}(-\w{2,3})?$")
SECURABLE_NAME = re.compile(r"token|key|pwd|password", re.IGNORECASE)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Fixed zip timestamps make the same sources always give the same bytes (1980 is the zip epoch).
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


class InvalidBaseUrl(ValueError):
    """The base URL can't be where Zendesk loads the app from."""


class InvalidPackage(ValueError):
    """The package breaks the manifest rules; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid Zendesk app package:\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems


def validate_package(files: dict[str, bytes], *, allow_localhost: bool = False) -> list[str]:
    """Return every way the package (paths relative to its root → contents) breaks the ZAF v2 rules."""
    problems = [f"{name!r} is not a plain relative path inside the package"
                for name in sorted(files) if not _is_plain_path(name)]
    raw = files.get("manifest.json")
    if raw is None:
        nested = sorted(name for name in files if name.endswith("/manifest.json"))
        problems.append(f"manifest.json must be at the package root, not {nested[0]}" if nested
                        else "manifest.json is missing from the package root")
        return problems
    try:
        manifest = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        return [*problems, f"manifest.json is not valid JSON: {exc}"]
    if not isinstance(manifest, dict):
        return [*problems, "manifest.json must hold a JSON object"]
    problems += _manifest_problems(manifest, files, allow_localhost)
    problems += _translation_problems(manifest, files)
    problems += _logo_problems(files)
    return problems


def read_package_dir(root: Path = MANIFEST_DIR) -> dict[str, bytes]:
    """Read manifest.json, translations/ and assets/ under `root`; raise InvalidPackage on symlinks."""
    if not (root / "manifest.json").exists() and not (root / "manifest.json").is_symlink():
        raise InvalidPackage([f"no manifest.json in {root}"])
    files: dict[str, bytes] = {}
    links: list[str] = []
    for top in ("manifest.json", "translations", "assets"):
        path = root / top
        if path.is_symlink():
            links.append(top)
        elif path.is_file():
            files[top] = path.read_bytes()
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                here = Path(dirpath)
                # Editor and OS droppings (.DS_Store, .swp) don't belong in an upload.
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in [*dirnames, *(f for f in filenames if not f.startswith("."))]:
                    if (here / name).is_symlink():
                        links.append((here / name).relative_to(root).as_posix())
                for name in filenames:
                    entry = here / name
                    if not name.startswith(".") and not entry.is_symlink():
                        files[entry.relative_to(root).as_posix()] = entry.read_bytes()
    if links:
        raise InvalidPackage([f"{link} is a symlink; Zendesk rejects packages containing symlinks"
                              for link in sorted(links)])
    return files


def check_base_url(base_url: str, *, allow_localhost: bool = False) -> str:
    """Return `base_url` as scheme://host[:port] if Zendesk can load the app there; else InvalidBaseUrl."""
    parts = urlsplit(base_url.strip())
    try:
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise InvalidBaseUrl(f"base URL {base_url!r} has an invalid port") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidBaseUrl(f"base URL must be an absolute https URL like https://truth.example.com, "
                             f"not {base_url!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidBaseUrl(f"base URL {base_url!r} must not contain a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in base_url or "#" in base_url:
        raise InvalidBaseUrl(f"base URL {base_url!r} must be only scheme, host and port "
                             "(no path, query or fragment); the app's paths are added to it")
    local = host in LOCAL_HOSTS
    if parts.scheme == "http" and not local:
        raise InvalidBaseUrl(f"base URL {base_url!r} must use https; Zendesk loads apps only over https")
    if local and not allow_localhost:
        raise InvalidBaseUrl(f"base URL {base_url!r} is a local address; "
                             "allow localhost (--allow-localhost) for a development build")
    if parts.scheme == "http" and host != "localhost":
        raise InvalidBaseUrl(f"base URL {base_url!r}: Zendesk accepts a non-https app URL only for the host "
                             "name localhost; use http://localhost:PORT")
    if host == urlsplit(PLACEHOLDER).hostname:
        raise InvalidBaseUrl(f"base URL {base_url!r} is the placeholder; give the URL your Order Truth "
                             "server is reachable at")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def build_package(base_url: str, output: Path, *, allow_localhost: bool = False,
                  manifest_dir: Path = MANIFEST_DIR) -> Path:
    """Write the app zip with the placeholder URLs pointing at `base_url`; return `output`."""
    base = check_base_url(base_url, allow_localhost=allow_localhost)
    files = read_package_dir(manifest_dir)
    problems = validate_package(files)
    if problems:
        raise InvalidPackage(problems)
    manifest = json.loads(files["manifest.json"])
    _point_at(manifest, base)
    files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    problems = validate_package(files, allow_localhost=allow_localhost)
    if problems:
        raise InvalidPackage(problems)
    _write_zip(files, output)
    return output


def _point_at(manifest: dict[str, Any], base: str) -> None:
    """Swap the placeholder for `base` in location URLs, remoteInstallationURL and domainWhitelist."""
    def swap(url: Any) -> Any:
        if isinstance(url, str) and (url == PLACEHOLDER or url.startswith(PLACEHOLDER + "/")):
            return base + url[len(PLACEHOLDER):]
        return url

    for locations in manifest.get("location", {}).values():
        for name, options in locations.items():
            if isinstance(options, dict):
                if "url" in options:
                    options["url"] = swap(options["url"])
            else:
                locations[name] = swap(options)
    if "remoteInstallationURL" in manifest:
        manifest["remoteInstallationURL"] = swap(manifest["remoteInstallationURL"])
    if "domainWhitelist" in manifest:
        placeholder_host, host = urlsplit(PLACEHOLDER).hostname, urlsplit(base).hostname
        domains = [host if domain == placeholder_host else domain for domain in manifest["domainWhitelist"]]
        manifest["domainWhitelist"] = list(dict.fromkeys(domains))


def _write_zip(files: dict[str, bytes], output: Path) -> None:
    """Write `files` as a reproducible zip (sorted entries, fixed timestamps and modes), atomically."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, files[name], compresslevel=9)
    partial.replace(output)


def _is_plain_path(name: str) -> bool:
    """True for a relative POSIX path with no empty, '.' or '..' segment."""
    return (bool(name) and not name.startswith("/") and "\\" not in name
            and all(part not in ("", ".", "..") for part in name.split("/")))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing repeated keys as Zendesk's validator does."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"duplicate keys {', '.join(repeated)}")
    return dict(pairs)


def _manifest_problems(manifest: dict[str, Any], files: dict[str, bytes], allow_localhost: bool) -> list[str]:
    """Problems with manifest.json's own fields."""
    problems = _author_problems(manifest.get("author"))
    locale = manifest.get("defaultLocale")
    if locale is None:
        problems.append("defaultLocale is required")
    elif not isinstance(locale, str) or not LOCALE.match(locale):
        problems.append(f"defaultLocale {locale!r} is not a locale like 'en' or 'pt-br'")
    for field in BOOLEAN_FIELDS:
        if field in manifest and not isinstance(manifest[field], bool):
            problems.append(f"{field} must be true or false, not {manifest[field]!r}")
    for field in STRING_FIELDS:
        if field in manifest and not isinstance(manifest[field], str):
            problems.append(f"{field} must be a string, not {manifest[field]!r}")
    terms = manifest.get("termsConditionsURL")
    if isinstance(terms, str) and not re.match(r"^https?://", terms):
        problems.append("termsConditionsURL must start with http:// or https://")
    install = manifest.get("remoteInstallationURL")
    if isinstance(install, str):
        problems += [f"remoteInstallationURL {p}" for p in _url_problems(install, files, allow_localhost)]
    whitelist = manifest.get("domainWhitelist")
    if whitelist is not None and not (isinstance(whitelist, list)
                                      and all(isinstance(domain, str) for domain in whitelist)):
        problems.append("domainWhitelist must be a list of domain names")

    if manifest.get("requirementsOnly") is True or manifest.get("marketingOnly") is True:
        for field in ("location", "frameworkVersion"):
            if field in manifest:
                problems.append(f"{field} must be absent from a requirements-only or marketing-only app")
    else:
        version = manifest.get("frameworkVersion")
        if version is None:
            problems.append("frameworkVersion is required")
        elif version != FRAMEWORK_VERSION:
            problems.append(f"frameworkVersion must be {FRAMEWORK_VERSION!r} (the only version Zendesk "
                            f"serves), not {version!r}")
        problems += _location_problems(manifest.get("location"), files, allow_localhost)
    return problems + _parameter_problems(manifest)


def _author_problems(author: Any) -> list[str]:
    """Problems with the required author object."""
    if author is None:
        return ["author is required (an object with name, email and url)"]
    if not isinstance(author, dict):
        return ["author must be an object with name, email and url"]
    problems = [f"author.{field} is required (a string)" for field in ("name", "email", "url")
                if not isinstance(author.get(field), str) or not author[field].strip()]
    url = author.get("url")
    if isinstance(url, str) and url.strip() and not re.match(r"^https?://", url):
        problems.append(f"author.url must start with http:// or https://, not {url!r}")
    return problems


def _location_problems(location: Any, files: dict[str, bytes], allow_localhost: bool) -> list[str]:
    """Problems with the location object (product → location name → URL or options)."""
    if location is None:
        return ["location is required"]
    if not isinstance(location, dict) or not location:
        return ['location must be an object like {"support": {"ticket_sidebar": {"url": "https://…"}}}']
    problems = []
    for product, locations in location.items():
        if not isinstance(locations, dict) or not locations:
            problems.append(f"location.{product} must be an object of location names to URLs or options")
            continue
        for name, options in locations.items():
            where = f"location.{product}.{name}"
            if isinstance(options, str):
                options = {"url": options}
            if not isinstance(options, dict):
                problems.append(f"{where} must be a URL or an object of location options")
                continue
            url = options.get("url")
            if isinstance(url, str) and url:
                problems += [f"{where}.url {p}" for p in _url_problems(url, files, allow_localhost)]
            elif url is not None and not isinstance(url, str):
                problems.append(f"{where}.url must be a string")
            elif options.get("autoLoad", True) is not False:
                problems.append(f"{where} needs a url")
            problems += [f"{where}.{flag} must be true or false, not {options[flag]!r}"
                         for flag in LOCATION_BOOLEANS
                         if flag in options and not isinstance(options[flag], bool)]
    return problems


def _url_problems(url: str, files: dict[str, bytes], allow_localhost: bool) -> list[str]:
    """Why Zendesk can't load `url`: it must be absolute https, a packaged assets/ file or localhost."""
    if "{{setting." in url:
        return []  # filled in from a setting at install time, so Zendesk doesn't check it either
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return [f"{url!r} is not a valid URL"]
    if not parts.scheme:
        if parts.path.startswith("assets/") and parts.path in files:
            return []
        return [f"{url!r} must be an absolute https URL or a file under assets/ in the package"]
    if host in LOCAL_HOSTS:
        if not allow_localhost:
            return [f"{url!r} points at this machine; localhost is only for development builds"]
        if parts.scheme != "https" and host != "localhost":
            return [f"{url!r}: Zendesk accepts a non-https URL only for the host name localhost"]
        return []
    if parts.scheme != "https" or not host:
        return [f"{url!r} must be an absolute https URL"]
    return []


def _parameter_problems(manifest: dict[str, Any]) -> list[str]:
    """Problems with the installation settings (the parameters list)."""
    parameters = manifest.get("parameters")
    if parameters is None:
        return []
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        return ["parameters must be a list of objects"]
    problems: list[str] = []
    names = [p.get("name") for p in parameters]
    repeated = sorted({str(n) for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"parameters repeat the names {', '.join(repeated)}")
    for param in parameters:
        name = param.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"every parameter needs a name (got {param!r})")
            continue
        where = f"parameter {name!r}"
        kind = param.get("type", "text")
        secure = param.get("secure", False)
        scopes = param.get("scopes")
        if name == "name":
            problems.append('a parameter may not be named "name"')
        if kind not in PARAMETER_TYPES:
            problems.append(f"{where} has unknown type {kind!r} (use one of "
                            f"{', '.join(sorted(PARAMETER_TYPES))}; for a secret, \"secure\": true)")
        for flag in ("required", "secure"):
            if flag in param and not isinstance(param[flag], bool):
                problems.append(f"{where}: {flag} must be true or false, not {param[flag]!r}")
        if kind == "hidden" and param.get("required") is True:
            problems.append(f"{where} is hidden, so it cannot be required")
        if scopes is not None and secure is not True:
            problems.append(f"{where} has scopes but is not secure; scopes apply only to secure parameters")
        elif secure is True and not scopes:
            # Zendesk only warns; we refuse, because without scopes the proxy may put the secret anywhere.
            problems.append(f"{where} is secure but has no scopes (list where the proxy may insert it, "
                            'e.g. ["header"])')
        if scopes is not None and not isinstance(scopes, list):
            problems.append(f"{where}: scopes must be a list")
        elif scopes:
            bad = [scope for scope in scopes if scope not in SECURE_SCOPES]
            if bad:
                problems.append(f"{where} has invalid scopes {', '.join(map(repr, bad))} "
                                f"(allowed: {', '.join(sorted(SECURE_SCOPES))})")
        if kind == "text" and SECURABLE_NAME.search(name) and secure is not True:
            problems.append(f"{where} looks like a credential (token/key/pwd/password) but is not secure")
        if kind == "oauth" and secure is True:
            problems.append(f"{where} is an oauth parameter, which cannot be secure")
    oauth = [p for p in parameters if p.get("type") == "oauth"]
    if len(oauth) > 1:
        problems.append("at most one parameter may have type oauth")
    if oauth:
        block = manifest.get("oauth")
        missing = [f for f in OAUTH_FIELDS if not isinstance(block, dict) or not block.get(f)]
        if missing:
            problems.append(f"an oauth parameter needs a manifest oauth block with {', '.join(missing)}")
    return problems


def _translation_problems(manifest: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    """Problems with translations/*.json, and the strings the default locale must provide."""
    problems = []
    documents: dict[str, Any] = {}
    for path in sorted(p for p in files if p.startswith("translations/")):
        match = re.fullmatch(r"translations/([^/]+)\.json", path)
        if not match or not LOCALE.match(match[1]):
            problems.append(f"{path} is not named translations/<locale>.json with a locale like en or pt-br")
            continue
        try:
            documents[path] = json.loads(files[path])
        except ValueError as exc:
            problems.append(f"{path} is not valid JSON: {exc}")
            continue
        if not isinstance(documents[path], dict):
            problems.append(f"{path} must hold a JSON object")
    locale = manifest.get("defaultLocale")
    if not isinstance(locale, str) or not LOCALE.match(locale):
        return problems
    path = f"translations/{locale}.json"
    if path not in files:
        return [*problems, f"{path} is missing (the default locale's translation file)"]
    document = documents.get(path)
    if not isinstance(document, dict):
        return problems
    app = document.get("app")
    if not isinstance(app, dict):
        return [*problems, f"{path} needs an app object"]
    for key in TRANSLATION_KEYS:
        value = app.get(key)
        if key == "short_description" and _text(value) is None:
            value = app.get("description")  # the older name Zendesk still accepts
        if _text(value) is None:
            problems.append(f"{path} needs app.{key}")
    labels = app.get("parameters") if isinstance(app.get("parameters"), dict) else {}
    parameters = manifest.get("parameters") if isinstance(manifest.get("parameters"), list) else []
    for param in parameters:
        name = param.get("name") if isinstance(param, dict) else None
        if isinstance(name, str) and name:
            entry = labels.get(name)
            if _text(entry.get("label") if isinstance(entry, dict) else None) is None:
                problems.append(f"{path} needs app.parameters.{name}.label")
    return problems


def _text(value: Any) -> str | None:
    """A translation's text: a plain string, or the {"value": …, "title": …} form; None if blank."""
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) and value.strip() else None


def _logo_problems(files: dict[str, bytes]) -> list[str]:
    """Problems with the two PNG logos Zendesk needs at exact sizes."""
    problems = []
    for path, side in LOGOS.items():
        data = files.get(path)
        if data is None:
            problems.append(f"{path} is missing (a {side}x{side} PNG)")
            continue
        size = png_size(data)
        if size is None:
            problems.append(f"{path} is not a PNG")
        elif size != (side, side):
            problems.append(f"{path} is {size[0]}x{size[1]}; it must be {side}x{side}")
    return problems


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or None if `data` isn't a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height
