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
    # The second refund also has no ERP booking and doubles the refunded sum for the return.
    "duplicate_refund": ({"DUPLICATE_REFUND", "PROCESSOR_REFUND_NOT_IN_ERP",
                          "REFUND_AMOUNT_MISMATCH"}, {}),
    "over_refund": ({"OVER_REFUND"}, {}),
    "zero_decimal_currency": (set(), {}),
    "dispute": ({"DISPUTE_WITH_REFUND"}, {}),
    "source_down": ({"SOURCE_UNAVAILABLE"}, {"erp": "error"}),
    "source_slow": ({"SOURCE_UNAVAILABLE"}, {"portal": "not_found", "processor": "timeout"}),
    "malformed_upstream": ({"SOURCE_UNAVAILABLE"}, {"portal": "error"}),
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
    assert len(rows) == 12 and len({r["order_id"] for r in rows}) == 12
