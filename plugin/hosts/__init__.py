"""Helpdesk hosts: the small interface every host adapter implements, and the adapters."""
