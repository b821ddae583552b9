"""The sandbox's installations: ordinary rows whose connections point at the simulated vendors."""

from __future__ import annotations

from ..connectors.registry import CONNECTORS
from ..core.model import SourceName
from ..installations import HELPDESK, Installations
from .server import zendesk_base_url
from .upstreams import vendors
from .zendesk import (
    SANDBOX_API_EMAIL,
    SANDBOX_API_TOKEN,
    SANDBOX_REFUND_STATUS_FIELD_ID,
    SANDBOX_ZENDESK_APP_ID,
    SANDBOX_ZENDESK_INSTALLATION_ID,
    SANDBOX_ZENDESK_SUBDOMAIN,
)

SANDBOX_KEY = "sandbox"


def seed(repo: Installations, url: str) -> None:
    """Create or refresh the sandbox installations for a sandbox served at `url`.

    "sandbox" uses the first simulated connector for each source; every other simulated
    connector gets its own installation ("sandbox-shopify-payments") with that connector in
    its source's place. The sandbox Zendesk installation launches the sidebar in the pretend
    helpdesk. Base URLs are rewritten on every start (the sandbox's port can change).
    """
    simulated = vendors()
    urls = {system: f"{url.rstrip('/')}/{v.path}" for system, v in simulated.items()}
    defaults: dict[SourceName, str] = {}
    for system in simulated:
        defaults.setdefault(CONNECTORS[system].source, system)

    def connect(installation_id: int, systems: dict[SourceName, str],
                served_at: dict[str, str]) -> None:
        for source, system in systems.items():
            vendor = simulated[system]
            repo.save_connection(installation_id, source=source.value, system=system,
                                 base_url=served_at.get(system, urls[system]),
                                 credentials=dict(vendor.credentials),
                                 options=dict(vendor.options))

    main = repo.ensure(SANDBOX_KEY, host="sandbox", name="Sandbox (simulated upstreams)",
                       settings={"public_api": True, "default": True})
    connect(main.id, defaults, {})
    for system, vendor in simulated.items():
        if system in defaults.values():
            continue
        source = CONNECTORS[system].source
        variant = repo.ensure(f"{SANDBOX_KEY}-{system.replace('_', '-')}", host="sandbox",
                              name=f"Sandbox with {CONNECTORS[system].title}",
                              settings={"public_api": True})
        served = {other: urls[system] for other in vendor.serves}
        connect(variant.id, {**defaults, source: system}, served)

    from ..hosts.zendesk.host import register

    zendesk = register(repo, SANDBOX_ZENDESK_SUBDOMAIN, SANDBOX_ZENDESK_INSTALLATION_ID,
                       app_id=SANDBOX_ZENDESK_APP_ID, base_url=zendesk_base_url(url),
                       name="Sandbox Zendesk",
                       extra={"origin": "self", "zaf_sdk_url": "/static/zaf-sandbox.js"})
    connect(zendesk.id, defaults, {})
    if "field_id" not in zendesk.settings.get("actions", {}).get("resolve", {}):
        # Resolving fills in the sandbox's "refund status" field (an admin's choice stays).
        repo.update_settings(zendesk.id, {
            "actions": {"resolve": {"field_id": SANDBOX_REFUND_STATUS_FIELD_ID}}})
    repo.save_connection(zendesk.id, source=HELPDESK, system="zendesk",
                         base_url=zendesk_base_url(url),
                         credentials={"auth": "api_token", "email": SANDBOX_API_EMAIL,
                                      "api_token": SANDBOX_API_TOKEN})
