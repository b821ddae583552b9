"""docs/connectors.md, written from the connector descriptors (a test keeps the file current)."""

from __future__ import annotations

from .registry import CONNECTORS


def render() -> str:
    """The connectors page: each connector's role, hosts, settings, env variables and states."""
    out = ["# Connectors", "",
           "Generated from the connector descriptors by `flask --app app connectors docs`; "
           "do not edit by hand.", "",
           "| system | source | API hosts | credentials (secret*) | options |",
           "|---|---|---|---|---|"]
    for d in CONNECTORS.values():
        creds = ", ".join(f"`{f.name}`" + ("*" if f.secret else "") for f in d.credentials)
        opts = ", ".join(f"`{f.name}`" for f in d.options) or "—"
        out.append(f"| `{d.system}` ({d.title}) | {d.source.value} | "
                   f"{', '.join(d.hosts)} | {creds} | {opts} |")
    for d in CONNECTORS.values():
        out += ["", f"## {d.title} (`{d.system}`)", "", d.quotes, ""]
        out.append("Standalone environment variables: "
                   + ", ".join(f"`ORDER_TRUTH_{name}`" for name in d.env_names()) + ".")
        for f in (*d.credentials, *d.options):
            if f.help:
                out.append(f"- `{f.name}`: {f.help}")
        if d.shop_gateways:
            out.append(f"- A shop records its payments under gateway "
                       f"{', '.join(f'`{g}`' for g in sorted(d.shop_gateways))}.")
        if d.writes:
            out.append(f"- Sidebar actions it carries out: "
                       f"{', '.join(f'`{w}`' for w in sorted(d.writes))}.")
        for table, mapping in d.states.items():
            out += ["", f"{table.capitalize()}:", "",
                    "| vendor | canonical |", "|---|---|"]
            out += [f"| `{vendor}` | {canonical} |" for vendor, canonical in mapping.items()]
    return "\n".join(out) + "\n"
