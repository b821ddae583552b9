"""Which ERP documents the sidebar offers to make, and on which lines: the counter-cases.

Each row is one case a returns-finance lead would raise, with the expected offer (or the
reason nothing is offered), built on the core's own reconciliation of small facts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from plugin.actions import Refused
from plugin.actions.erp_fixes import (
    ITEM_RECEIPT,
    RETURN_AUTHORIZATION,
    allocate,
    fixes,
    plan,
)
from plugin.core.model import ErpSale, SaleKind
from plugin.core.reconcile import reconcile
from plugin.core.record import FlagCode
from tests.core.builders import (
    NOW,
    ORDER,
    ago,
    money,
    payment,
    portal_return,
    ra,
    receipt,
    results,
    sales_order,
    store_return,
)

LAG = timedelta(hours=24)  # the default store inventory window


def truth(**facts):
    return reconcile(ORDER, results(**facts), NOW)


def offered(**facts):
    return [(f.action, f.subject, f.lines, f.location, f.ra_id, f.why_not)
            for f in fixes(truth(**facts), store_inventory_lag=LAG)]


SO = sales_order()
PAID = [payment()]

# ---------------------------------------------------------------- zone 1 rows

ZONE1 = [
    # (case, facts, expected offers as (subject, lines, why_not contains))
    ("portal return authorized, ERP has the sale and no RA",
     {"portal": [portal_return("R1", lines=(("SKU-1", 1),))], "so": SO},
     [("R1", (("SKU-1", 1),), None)]),
    ("two units of one line and one of another, listed in any order",
     {"portal": [portal_return("R1", lines=(("SKU-2", 1), ("SKU-1", 2)))], "so": SO},
     [("R1", (("SKU-1", 2), ("SKU-2", 1)), None)]),
    ("the same SKU on two portal lines is one line of 2",
     {"portal": [portal_return("R1", lines=(("SKU-1", 1), ("SKU-1", 1)))], "so": SO},
     [("R1", (("SKU-1", 2),), None)]),
    ("the ERP already has the RA under the portal's id",
     {"portal": [portal_return("R1")], "so": SO, "ras": [ra("RA1", portal_id="R1")]}, []),
    ("authorized an hour ago: the sync may still bring it",
     {"portal": [portal_return("R1", created=ago(hours=1))], "so": SO}, []),
    ("the customer cancelled the return",
     {"portal": [portal_return("R1", raw="cancelled")], "so": SO}, []),
    ("the portal lists no items",
     {"portal": [portal_return("R1", lines=())], "so": SO},
     [("R1", (), "doesn't list the returned items")]),
    ("the ERP booked a cash sale, not a sales order",
     {"portal": [portal_return("R1")],
      "so": ErpSale("77", "CS-77", SaleKind.CASH_SALE, "C", money(12000), ago(days=20))},
     [("R1", (("SKU-1", 1),), "cash sale (CS-77)")]),
    ("two returns missing, listed newest first: one offer each, in the record's order",
     {"portal": [portal_return("R2", lines=(("SKU-2", 1),)), portal_return("R1")], "so": SO},
     [("R1", (("SKU-1", 1),), None), ("R2", (("SKU-2", 1),), None)]),
]


@pytest.mark.parametrize(("case", "facts", "expected"), ZONE1, ids=[r[0] for r in ZONE1])
def test_zone1_offers(case, facts, expected):
    got = [o for o in offered(**facts) if o[0] == RETURN_AUTHORIZATION]
    assert [(subject, lines) for _, subject, lines, *_ in got] == \
        [(subject, lines) for subject, lines, _ in expected], case
    for (*_, why), (*_, want) in zip(got, expected, strict=True):
        assert (why is None) if want is None else (why is not None and want in why), case


def test_no_offer_when_the_erp_did_not_answer_or_the_order_is_unknown():
    assert offered(portal=[portal_return("R1")], so=SO, erp_status="timeout") == []
    assert offered() == []


# ---------------------------------------------------------------- zone 3 rows

STORE = "gid://shopify/Refund/9"
ZONE3 = [
    ("store took back 1, the ERP has nothing",
     {"stores": [store_return(STORE, "SKU-9", 1)], "so": SO, "payments": PAID},
     [(STORE, (("SKU-9", 1),), "Brooklyn Store", None, None)]),
    ("store took back 2, the ERP received 1 there on the store's RA",
     {"stores": [store_return(STORE, "SKU-9", 2)], "so": SO, "payments": PAID,
      "ras": [ra("RA9", portal_id=None)],
      "receipts": [receipt("IR9", "RA9", sku="SKU-9", location="Brooklyn Store")]},
     [(STORE, (("SKU-9", 1),), "Brooklyn Store", "RA9", None)]),
    ("received in full at the store",
     {"stores": [store_return(STORE, "SKU-9", 1)], "so": SO, "payments": PAID,
      "ras": [ra("RA9", portal_id=None)],
      "receipts": [receipt("IR9", "RA9", sku="SKU-9", location="brooklyn store ")]}, []),
    ("received at the warehouse on an RA no portal return explains: not twice",
     {"stores": [store_return(STORE, "SKU-9", 1)], "so": SO, "payments": PAID,
      "ras": [ra("RA9", portal_id=None)],
      "receipts": [receipt("IR9", "RA9", sku="SKU-9", location="Main Warehouse")]},
     [(STORE, (("SKU-9", 1),), "Brooklyn Store", None, "Main Warehouse")]),
    ("a mail return of the same SKU received at the warehouse is that return's",
     {"stores": [store_return(STORE, "SKU-9", 1)], "so": SO, "payments": PAID,
      "portal": [portal_return("R1", lines=(("SKU-9", 1),))], "ras": [ra("RA1")],
      "receipts": [receipt("IR1", "RA1", sku="SKU-9", location="Main Warehouse")]},
     [(STORE, (("SKU-9", 1),), "Brooklyn Store", None, None)]),
    ("taken back two hours ago: the ERP may still post it",
     {"stores": [store_return(STORE, "SKU-9", 1, created=ago(hours=2))], "so": SO,
      "payments": PAID}, []),
    ("the shop doesn't say which store",
     {"stores": [store_return(STORE, "SKU-9", 1, location=None)], "so": SO, "payments": PAID},
     [(STORE, (("SKU-9", 1),), "", None, "doesn't say which store")]),
    ("no sales order in the ERP to make the RA from",
     {"stores": [store_return(STORE, "SKU-9", 1)],
      "so": ErpSale("5", "INV-5", SaleKind.INVOICE, "A", money(12000), ago(days=20)),
      "payments": PAID},
     [(STORE, (("SKU-9", 1),), "Brooklyn Store", None, "invoice (INV-5)")]),
]


@pytest.mark.parametrize(("case", "facts", "expected"), ZONE3, ids=[r[0] for r in ZONE3])
def test_zone3_offers(case, facts, expected):
    got = [o for o in offered(**facts) if o[0] == ITEM_RECEIPT]
    assert [(s, lines, loc, ra_id) for _, s, lines, loc, ra_id, _ in got] == \
        [(s, lines, loc, ra_id) for s, lines, loc, ra_id, _ in expected], case
    for (*_, why), (*_, want) in zip(got, expected, strict=True):
        assert (why is None) if want is None else (why is not None and want in why), case


def test_two_store_returns_of_one_sku_share_what_is_missing_oldest_first():
    older = store_return("gid://shopify/Refund/1", "SKU-9", 1, created=ago(days=5))
    newer = store_return("gid://shopify/Refund/2", "SKU-9", 1, created=ago(days=3))
    # The ERP received one at the store on an RA of neither: one unit is missing in all.
    facts = {"so": SO, "payments": PAID, "ras": [ra("RA7", portal_id=None)],
             "receipts": [receipt("IR7", "RA7", sku="SKU-9", location="Brooklyn Store")]}
    for stores in ([older, newer], [newer, older]):  # the shop's listing order changes nothing
        got = [(f.subject, f.lines) for f in
               fixes(truth(stores=stores, **facts), store_inventory_lag=LAG)
               if f.action == ITEM_RECEIPT]
        assert sum(q for _, lines in got for _, q in lines) == 1
    t = truth(stores=[older, newer], so=SO, payments=PAID)
    assert FlagCode.STORE_RETURN_NOT_IN_INVENTORY in {f.code for f in t.flags}
    assert [(f.subject, f.lines) for f in fixes(t, store_inventory_lag=LAG)] == [
        ("gid://shopify/Refund/1", (("SKU-9", 1),)), ("gid://shopify/Refund/2", (("SKU-9", 1),))]


# ---------------------------------------------------------------- lines


SO_LINES = [{"line": 4, "sku": "SKU-1", "quantity": 1}, {"line": 1, "sku": "SKU-1", "quantity": 2},
            {"line": 2, "sku": "SKU-2", "quantity": 1}]

ALLOCATE = [
    ("one of two units of a line", (("SKU-2", 1),), (), [(2, 1)]),
    ("a SKU split over two lines fills them in line order", (("SKU-1", 3),), (),
     [(1, 2), (4, 1)]),
    ("units returned before use up the first lines", (("SKU-1", 1),), (("SKU-1", 2),),
     [(4, 1)]),
    ("SKUs compare without case or spaces", ((" sku-2", 1),), (), [(2, 1)]),
]


@pytest.mark.parametrize(("case", "wanted", "taken", "expected"), ALLOCATE,
                         ids=[r[0] for r in ALLOCATE])
def test_allocate(case, wanted, taken, expected):
    assert allocate(wanted, SO_LINES, taken) == expected, case
    assert allocate(wanted, list(reversed(SO_LINES)), taken) == expected, case


@pytest.mark.parametrize(("wanted", "taken", "code"), [
    ((("SKU-3", 1),), (), "not_on_document"),  # an item the order never had (an exchange's)
    ((("SKU-1", 4),), (), "over_quantity"),  # more than was sold
    ((("SKU-1", 2),), (("SKU-1", 2),), "over_quantity"),  # two already returned before
])
def test_allocate_refuses(wanted, taken, code):
    with pytest.raises(Refused) as info:
        allocate(wanted, SO_LINES, taken)
    assert info.value.code == code and info.value.status == 409


# ---------------------------------------------------------------- plan on a fake ERP


class FakeErp:
    """An ERP holding one sales order's lines, its RAs' lines and locations."""

    def __init__(self, so_lines, ra_lines=None, locations=None):
        self.so_lines, self.ra_lines = so_lines, ra_lines or {}
        self.locations = locations if locations is not None else {"Brooklyn Store": ["2"]}

    def ra_external_id(self, portal_return_id):
        return f"loop-{portal_return_id}"

    def sales_order_lines(self, so_id):
        assert so_id == SO.internal_id
        return self.so_lines

    def transaction_lines(self, record_type, record_id):
        return self.ra_lines[record_id]

    def location_ids(self, name):
        return self.locations.get(name, [])

    def find_by_external_id(self, record_type, external_id):
        return None


def test_plan_counts_units_on_earlier_return_authorizations():
    # Sold 2 × SKU-1; an earlier return (RA1) took one back; the new return asks for 2.
    facts = {"portal": [portal_return("R1", lines=(("SKU-1", 1),)),
                        portal_return("R2", lines=(("SKU-1", 2),))],
             "so": SO, "ras": [replace(ra("RA1", portal_id="R1"), created_from="4411")]}
    erp = FakeErp([{"line": 1, "sku": "SKU-1", "quantity": 2}],
                  {"RA1": [{"line": 1, "sku": "SKU-1", "quantity": 1}]})
    with pytest.raises(Refused) as info:
        plan(truth(**facts), erp, action=RETURN_AUTHORIZATION, subject="R2", installation_id=1,
             ticket_id="5", store_inventory_lag=LAG)
    assert info.value.code == "over_quantity" and "1 × SKU-1 left" in info.value.message


def test_plan_for_a_store_return_names_documents_lines_and_location():
    t = truth(stores=[store_return(STORE, "SKU-9", 1)], so=SO, payments=PAID)
    erp = FakeErp([{"line": 3, "sku": "SKU-9", "quantity": 1}])
    p = plan(t, erp, action=ITEM_RECEIPT, subject=STORE, installation_id=1, ticket_id="5",
             store_inventory_lag=LAG)
    assert (p.ra_external_id, p.receipt_external_id, p.ra_lines, p.location_id) == (
        "pos-9", "pos-9-receipt", ((3, 1),), "2")
    assert p.steps == [
        "Create a return authorization from sales order SO-4411 for 1 × SKU-9, external id "
        "pos-9.",
        "Receive 1 × SKU-9 into inventory at Brooklyn Store against it, external id "
        "pos-9-receipt."]
    # The same request from another ticket is the same key: one set of documents per return.
    again = plan(t, erp, action=ITEM_RECEIPT, subject=STORE, installation_id=1, ticket_id="6",
                 store_inventory_lag=LAG)
    assert again.key == p.key
    for locations, word in (({}, "no"), ({"Brooklyn Store": ["2", "8"]}, "more than one")):
        with pytest.raises(Refused) as info:
            plan(t, FakeErp(erp.so_lines, locations=locations), action=ITEM_RECEIPT,
                 subject=STORE, installation_id=1, ticket_id="5", store_inventory_lag=LAG)
        assert info.value.code == "unknown_location" and f"has {word} active" in info.value.message


def test_plan_refuses_what_the_record_does_not_flag():
    t = truth(portal=[portal_return("R1")], so=SO, ras=[ra("RA1", portal_id="R1")])
    with pytest.raises(Refused) as info:
        plan(t, FakeErp([]), action=RETURN_AUTHORIZATION, subject="R1", installation_id=1,
             ticket_id="5", store_inventory_lag=LAG)
    assert info.value.code == "nothing_to_fix"
    t = truth(portal=[portal_return("R1", lines=())], so=SO)
    with pytest.raises(Refused) as info:
        plan(t, FakeErp([]), action=RETURN_AUTHORIZATION, subject="R1", installation_id=1,
             ticket_id="5", store_inventory_lag=LAG)
    assert info.value.code == "cannot_fix"


def test_a_unit_the_store_received_for_a_mail_return_counts_against_what_is_missing():
    """A mail return dropped off at the store and received there: the ERP has one of the
    three units the store took in; two are missing, offered oldest first, never three."""
    oldest = store_return("gid://shopify/Refund/1", "SKU-9", 1, created=ago(days=5))
    older = store_return("gid://shopify/Refund/2", "SKU-9", 1, created=ago(days=4))
    newer = store_return("gid://shopify/Refund/3", "SKU-9", 1, created=ago(days=3))
    facts = {"so": SO, "payments": PAID,
             "portal": [portal_return("R1", lines=(("SKU-9", 1),))], "ras": [ra("RA1")],
             "receipts": [receipt("IR1", "RA1", sku="SKU-9", location="Brooklyn Store")]}
    for stores in ([oldest, older, newer], [newer, oldest, older]):
        got = [(f.subject, f.lines) for f in
               fixes(truth(stores=stores, **facts), store_inventory_lag=LAG)
               if f.action == ITEM_RECEIPT]
        assert got == [("gid://shopify/Refund/1", (("SKU-9", 1),)),
                       ("gid://shopify/Refund/2", (("SKU-9", 1),))]


# ---------------------------------------------------------------- stores the ERP names otherwise

BK01 = "BK01 Brooklyn Retail"
MAPPED = (("Brooklyn Store", BK01),)


def _bk01_truth(store_locations=(), received_at=BK01):
    from plugin.core.settings import ReconcileSettings

    facts = results(stores=[store_return(STORE, "SKU-9", 1)], so=SO, payments=PAID,
                    ras=[ra("RA9", portal_id=None)],
                    receipts=[receipt("IR9", "RA9", sku="SKU-9", location=received_at)])
    return reconcile(ORDER, facts, NOW, ReconcileSettings(store_locations=store_locations))


def test_a_store_the_erp_names_otherwise_needs_no_receipt_once_mapped():
    assert fixes(_bk01_truth(MAPPED), store_inventory_lag=LAG) == []
    assert FlagCode.STORE_RETURN_NOT_IN_INVENTORY not in {f.code for f in _bk01_truth(
        MAPPED).flags}


def test_unmapped_a_receipt_elsewhere_is_never_received_again_and_says_how_to_map_it():
    [fix] = fixes(_bk01_truth(), store_inventory_lag=LAG)
    assert fix.why_not is not None and BK01 in fix.why_not
    assert "map it in the app settings" in fix.why_not
    [flag] = [f for f in _bk01_truth().flags if f.code is FlagCode.STORE_RETURN_NOT_IN_INVENTORY]
    assert f"it received 1 at {BK01}, a place the shop doesn't name" in flag.message
    assert "understated" not in flag.message  # the goods may be right there


def test_the_receipt_is_made_at_the_erp_s_name_for_the_store():
    t = truth(stores=[store_return(STORE, "SKU-9", 1)], so=SO, payments=PAID)
    erp = FakeErp([{"line": 3, "sku": "SKU-9", "quantity": 1}], locations={BK01: ["12"]})
    p = plan(t, erp, action=ITEM_RECEIPT, subject=STORE, installation_id=1, ticket_id="5",
             store_inventory_lag=LAG, store_locations=MAPPED)
    assert p.location_id == "12"
    with pytest.raises(Refused) as info:  # unmapped: the ERP has no "Brooklyn Store"
        plan(t, erp, action=ITEM_RECEIPT, subject=STORE, installation_id=1, ticket_id="5",
             store_inventory_lag=LAG)
    assert info.value.code == "unknown_location" and "under Stores" in info.value.message
