"""Upstream connectors: one base client, one module per vendor dialect."""
