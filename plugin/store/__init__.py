"""Persistence: installations (tenants), their connections and settings."""
