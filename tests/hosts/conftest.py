"""Helpers for the Zendesk host tests: launch the sidebar the way Zendesk does."""

from __future__ import annotations

import re

import pytest

SIDEBAR = "/zendesk/sidebar?origin=http://localhost&app_guid=test"


@pytest.fixture
def zd(sandbox):
    """The sandbox's Zendesk (keys, tickets, faults)."""
    return sandbox.state.zendesk


@pytest.fixture
def launch(client, zd):
    """POST a launch token to the sidebar; returns the response."""

    def go(token=None, *, origin="http://localhost", **sign):
        if token is None:
            token = zd.sign_launch(**sign)
        url = "/zendesk/sidebar" + (f"?origin={origin}&app_guid=test" if origin else "")
        return client.post(url, data={"token": token})

    return go


@pytest.fixture
def session(launch):
    """A sidebar session (bearer token and CSRF value) for the sandbox Zendesk installation."""
    resp = launch()
    assert resp.status_code == 200, resp.get_data(as_text=True)
    html = resp.get_data(as_text=True)
    token = re.search(r'data-session="([^"]+)"', html).group(1)
    csrf = re.search(r'data-csrf="([^"]+)"', html).group(1)
    return {"Authorization": f"Bearer {token}", "X-CSRF-Token": csrf}
