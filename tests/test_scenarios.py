"""Every seeded scenario end to end: real connectors over HTTP to the sandbox, then reconcile."""

from __future__ import annotations

import json

import pytest

from plugin.sandbox.scenarios import SCENARIOS

EXPECTED = {
    # scenario: (flag codes, non-ok source statuses)
    "clean": (set(), {}),
    "zone1_return_not_in_erp": ({"RETURN_NOT_IN_ERP"}, {}),
    "zone2_erp_refund_not_at_processor": ({"ERP_REFUND_NOT_AT_PROCESSOR"}, {}),
    "zone3_store_return_not_in_inventory": ({"STORE_RETURN_NOT_IN_INVENTORY"},
                                            {"portal": "not_found"}),
    "partial_refund": (set(), {}),
    # Both refunds quote the one memo: the ERP booked $50.00 for $100.00 paid out.
    "duplicate_refund": ({"DUPLICATE_REFUND", "REFUND_AMOUNT_MISMATCH"}, {}),
    "over_refund": ({"OVER_REFUND"}, {}),
    "zero_decimal_currency": (set(), {}),
    "dispute": ({"DISPUTE_WITH_REFUND"}, {}),
    "source_down": ({"SOURCE_UNAVAILABLE"}, {"erp": "error"}),
    "source_slow": ({"SOURCE_UNAVAILABLE"}, {"portal": "not_found", "processor": "timeout"}),
    "malformed_upstream": ({"SOURCE_UNAVAILABLE"}, {"portal": "error"}),
    # Ordinary bookkeeping and other tenders: nothing to flag.
    "split_refund_two_memos": (set(), {}),
    "batch_posting": (set(), {}),
    "store_cash_refund": (set(), {"portal": "not_found"}),
    "exchange_received": (set(), {}),
    "store_credit_gift_card": (set(), {}),
    "gift_card_and_card": (set(), {}),
    "lost_chargeback_after_refund": ({"OVER_REFUND"}, {}),
    "return_held_for_review": (set(), {}),
    "expired_return_open_in_erp": ({"RETURN_STATE_DIVERGENCE"}, {}),
}

# What the customer is told: the headline's meaning codes, and where money went.
HEADLINES = {
    "clean": {"REFUNDED", "RETURN_CLOSED"},
    "zone2_erp_refund_not_at_processor": {"REFUND_UNCONFIRMED", "RETURN_CLOSED"},
    "zone3_store_return_not_in_inventory": {"REFUNDED"},
    "split_refund_two_memos": {"REFUNDED", "RETURN_CLOSED"},
    "store_cash_refund": {"REFUNDED"},
    "exchange_received": {"EXCHANGE", "RETURN_RECEIVED"},
    "store_credit_gift_card": {"STORE_CREDIT_ISSUED", "RETURN_CLOSED"},
    "gift_card_and_card": {"REFUNDED", "RETURN_CLOSED"},
    "lost_chargeback_after_refund": {"REFUNDED", "CHARGEBACK_LOST", "RETURN_CLOSED"},
    "return_held_for_review": {"RETURN_HELD", "NO_REFUND_YET"},
    "expired_return_open_in_erp": {"RETURN_EXPIRED"},
}


def test_every_scenario_is_covered():
    assert [s.name for s in SCENARIOS] == list(EXPECTED)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_record(runner, scenario):
    result = runner.invoke(args=["truth", scenario.order_number, "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    flags, degraded = EXPECTED[scenario.name]
    assert {f["code"] for f in record["flags"]} == flags
    statuses = {name: src["status"] for name, src in record["sources"].items()}
    assert {k: v for k, v in statuses.items() if v != "ok"} == degraded
    assert record["headline"]
    if scenario.name in HEADLINES:
        assert set(record["headline_meanings"]) == HEADLINES[scenario.name], record["headline"]


@pytest.mark.parametrize(("order", "remaining", "given_back", "says"), [
    ("1013", 6000, 4000, "Visa ending 4242"),
    ("1015", 0, 6000, "in cash at Brooklyn Store"),
    ("1017", 3500, 3500, "gift card"),
    ("1018", 0, 10000, "gift card"),
    ("1019", 0, 16000, "dispute"),
])
def test_money_back_by_tender(runner, order, remaining, given_back, says):
    record = json.loads(runner.invoke(args=["truth", order, "--json"]).output)
    e = record["eligibility"]
    assert e["remaining"]["amount_minor"] == remaining
    assert e["order_given_back"]["amount_minor"] == given_back
    assert says in record["headline"]
    # The ledger lists every movement with its tender and where it went.
    assert record["ledger"] and all({"kind", "tender", "destination", "state", "counted"}
                                    <= set(entry) for entry in record["ledger"])


def test_partial_refund_leaves_the_rest_refundable(runner):
    record = json.loads(runner.invoke(args=["truth", "1005", "--json"]).output)
    assert record["eligibility"]["remaining"] == {"amount_minor": 6500, "currency": "USD",
                                                  "display": "$65.00"}
    assert record["eligibility"]["eligible"] is True


def test_zero_decimal_currency_is_not_scaled(runner):
    record = json.loads(runner.invoke(args=["truth", "1008", "--json"]).output)
    assert record["currency"] == "JPY"
    assert record["eligibility"]["captured"]["amount_minor"] == 12000
    assert "¥4,500" in record["headline"]


def test_unknown_order_is_not_found_everywhere(runner):
    record = json.loads(runner.invoke(args=["truth", "9999", "--json"]).output)
    assert record["found"] is False
    assert {s["status"] for s in record["sources"].values()} == {"not_found"}
    assert record["flags"] == []


def test_malformed_order_id_is_refused_before_any_upstream_call(runner, app, monkeypatch):
    def no_lookup(*args, **kwargs):
        raise AssertionError("upstreams must not be asked about a malformed order ID")

    monkeypatch.setattr(app.extensions["order_truth"], "lookup", no_lookup)
    result = runner.invoke(args=["truth", "10'01; DROP", "--json"])
    assert result.exit_code == 2
    assert "may contain only letters" in result.output


def test_scenarios_command_lists_names_and_order_ids(runner):
    rows = json.loads(runner.invoke(args=["sandbox", "scenarios", "--json"]).output)
    assert rows[0] == {"scenario": "clean", "order_id": "1001"}
    assert len(rows) == len(SCENARIOS) == 21 and len({r["order_id"] for r in rows}) == 21
