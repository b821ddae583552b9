"""The domain table: every row of cases.yaml, reconciled and checked against its expectations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from plugin.core.money import Money
from plugin.core.reconcile import reconcile

from .builders import NOW
from .table import ORDER, _Money, build, load_cases

CASES = load_cases()


def test_the_table_is_big_enough_to_mean_something():
    assert len(CASES) >= 60
    assert all(row.get("story") for row in CASES), "every row says what happened"


@pytest.mark.parametrize("row", CASES, ids=[row["id"] for row in CASES])
def test_row(row):
    results, settings = build(row)
    truth = reconcile(ORDER, results, NOW, settings)
    expect = row["expect"]
    codes = {f.code.value for f in truth.flags}
    story = f"{row['id']}: {row['story']}\nheadline: {truth.headline}\nflags: " + "; ".join(
        f"{f.code.value}[{f.severity.value}] {f.message}" for f in truth.flags)

    assert codes == set(expect["flags"]), story
    for code, level in expect.get("severities", {}).items():
        assert {f.severity.value for f in truth.flags if f.code.value == code} == {level}, story
    for code, phrases in expect.get("flag_says", {}).items():
        said = " ".join(f"{f.message} {f.suggested_action}" for f in truth.flags
                        if f.code.value == code)
        for phrase in phrases:
            assert phrase.lower() in said.lower(), story
    for code, subjects in expect.get("subjects", {}).items():
        assert sorted(f.subject for f in truth.flags if f.code.value == code) == sorted(subjects), story

    e = truth.eligibility
    if "remaining" in expect:
        assert _decimal(e.remaining) == _expected(expect["remaining"]), story + f"\n{e}"
    if "eligible" in expect:
        assert e.eligible is expect["eligible"], story + f"\n{e.reason}"
    if "given_back" in expect:
        assert _decimal(e.order_given_back) == _expected(expect["given_back"]), story
    if "currency" in expect:
        assert truth.currency == expect["currency"], story
    shop_amounts = {x.key: x.amount_shop for x in truth.ledger}
    for key, amount in expect.get("shop_amounts", {}).items():
        assert shop_amounts.get(key) == _Money("USD")(amount), story + f"\n{shop_amounts}"
    for phrase in expect.get("reason_says", ()):
        assert phrase.lower() in e.reason.lower(), story + f"\n{e.reason}"

    meanings = set(truth.headline_meanings)
    for meaning in expect.get("meanings", ()):
        assert meaning in meanings, story + f"\nmeanings: {sorted(meanings)}"
    for meaning in expect.get("not_meanings", ()):
        assert meaning not in meanings, story + f"\nmeanings: {sorted(meanings)}"
    text = truth.headline.lower()
    for phrase in expect.get("says", ()):
        assert phrase.lower() in text, story
    for phrase in expect.get("never_says", ()):
        assert phrase.lower() not in text, story


def _decimal(money: Money | None) -> Decimal | None:
    return None if money is None else money.to_decimal()


def _expected(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))
