"""Zendesk host: signed launches, Zendesk API client, app package."""
