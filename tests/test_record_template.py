"""The record as the agent reads it: amounts in both currencies where the shop's differs."""

from __future__ import annotations

import re

from flask import render_template

from plugin.core.reconcile import reconcile
from tests.core.builders import NOW
from tests.core.table import ORDER, build, load_cases


def render(app, row_id):
    row = next(r for r in load_cases() if r["id"] == row_id)
    results, settings = build(row)
    truth = reconcile(ORDER, results, NOW, settings)
    with app.test_request_context():
        return render_template("widget/_record.html", truth=truth, embedded=True)


def test_presentment_and_shop_currency_side_by_side(app):
    html = render(app, "eur-till-refund-keeps-both-currencies")
    assert re.search(r"<dd data-shop-currency>\$86\.40</dd>", html)  # what the shop booked
    refund_row = re.search(r'<tr class="" data-kind="store_refund".*?</tr>', html, re.S).group(0)
    assert "€25.00" in refund_row and "$27.00" in refund_row


def test_a_single_currency_order_shows_no_shop_currency_line(app):
    assert "data-shop-currency" not in render(app, "paid-no-return")
