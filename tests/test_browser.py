"""The sidebar in a real browser: signed launch, ZAF ticket context, and writes back to the ticket."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
REQUIRE = os.environ.get("ORDER_TRUTH_REQUIRE_BROWSER") == "1"


def _skip_or_fail(reason: str):
    if REQUIRE:
        pytest.fail(f"ORDER_TRUTH_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def live_app(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def page():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed")
    if not shutil.which(CHROMIUM):
        _skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        yield page
        browser.close()


def sidebar(page):
    return page.frame_locator("#sb-app")


def sign_in(page, frame, user_id=9002, name="Sam Agent"):
    """The agent signs in as themselves in the pop-up the sidebar opens (the sandbox's
    Zendesk consent page), and the sidebar picks the sign-in up by itself."""
    frame.locator("#ot-agent button").wait_for(timeout=15000)
    with page.expect_popup() as opened:
        frame.locator("#ot-agent button").click()
    popup = opened.value
    popup.locator(f'button[name="user_id"][value="{user_id}"]').click()
    frame.locator(f"#ot-agent >> text=posted as {name}").wait_for(timeout=15000)


def test_order_from_description_and_note_posted_once_on_double_click(live_app, page, sandbox):
    page.goto(f"{live_app}/sandbox/tickets/103")
    frame = sidebar(page)
    frame.locator(".ot-headline").wait_for(timeout=15000)
    assert "Order ID 1003 from the ticket" in frame.locator("#ot-context").inner_text()
    assert frame.locator('[data-code="ERP_REFUND_NOT_AT_PROCESSOR"]').count() == 1

    note = frame.locator('[data-ot-action="note"]')
    note.click()  # before signing in: nothing is written, and the sidebar says why
    frame.locator(".ot-action-status.fail >> text=sign in").wait_for(timeout=15000)
    assert [c for c in sandbox.state.zendesk.ticket(103)["comments"] if not c["public"]] == []
    sign_in(page, frame)
    note.dblclick()
    frame.locator(".ot-action-status.ok").wait_for(timeout=15000)
    assert "Internal note posted." in frame.locator(".ot-action-status").inner_text()
    internal = [c for c in sandbox.state.zendesk.ticket(103)["comments"] if not c["public"]]
    assert len(internal) == 1 and internal[0]["author_id"] == 9002
    assert "ERP refund never reached the processor" in internal[0]["body"]

    frame.locator('[data-ot-action="tags"]').click()
    frame.locator(".ot-action-status.ok >> text=Tagged").wait_for(timeout=15000)
    assert "order-truth-erp_refund_not_at_processor" in sandbox.state.zendesk.ticket(103)["tags"]

    # The ticket page shows what the app wrote.
    page.goto(f"{live_app}/sandbox/tickets/103")
    assert "order-truth-erp_refund_not_at_processor" in page.locator(".sb-tags").inner_text()
    assert "Order Truth ref" in page.locator(".sb-internal pre").first.inner_text()
    assert "Internal note by Sam Agent" in page.locator(".sb-internal b").first.inner_text()


def test_order_from_ticket_field_and_typed_lookup(live_app, page):
    page.goto(f"{live_app}/sandbox/tickets/102")
    frame = sidebar(page)
    frame.locator(".ot-headline").wait_for(timeout=15000)
    assert "from the ticket's Order ID field" in frame.locator("#ot-context").inner_text()
    frame.locator("#ot-order").fill("1006")
    frame.locator("#ot-lookup button").click()
    frame.locator('[data-code="DUPLICATE_REFUND"]').wait_for(timeout=15000)
    assert "typed by you" in frame.locator("#ot-context").inner_text()


def test_failed_note_is_shown_and_retry_posts_once(live_app, page, sandbox):
    page.goto(f"{live_app}/sandbox/tickets/102")
    frame = sidebar(page)
    frame.locator(".ot-headline").wait_for(timeout=15000)
    sign_in(page, frame)
    # Every attempt of this click fails; the widget says so and offers a retry.
    sandbox.state.zendesk.faults.fail_next(3, status=503)
    frame.locator('[data-ot-action="note"]').click()
    frame.locator(".ot-action-status.fail").wait_for(timeout=20000)
    assert "Click again to retry" in frame.locator(".ot-action-status").inner_text()
    frame.locator('[data-ot-action="note"]').click()
    frame.locator(".ot-action-status.ok").wait_for(timeout=15000)
    internal = [c for c in sandbox.state.zendesk.ticket(102)["comments"] if not c["public"]]
    assert len(internal) == 1


def test_sections_fill_in_as_sources_answer_with_one_polite_announcement(app, live_app, page,
                                                                          sandbox):
    from plugin.sandbox.faults import FaultSpec

    # The ERP answers well after the others (two calls: ~1.6 s), inside a deadline long
    # enough that a loaded machine still sees the fast sections first.
    app.config["FANOUT_DEADLINE_SECONDS"] = 4.0
    sandbox.state.faults.set("erp", FaultSpec(delay_ms=800))
    page.goto(f"{live_app}/sandbox/tickets/103")
    frame = sidebar(page)
    # The frame is up and the fast sources answered while the ERP is still being asked.
    frame.locator('#source-portal[data-status="ok"]').wait_for(timeout=15000)
    assert frame.locator('#source-erp[data-status="pending"]').count() == 1
    assert "Asking each system" in frame.locator(".ot-placeholder").inner_text()
    assert frame.locator("#ot-record").get_attribute("aria-live") is None
    assert frame.locator("#ot-record").get_attribute("aria-busy") == "true"
    assert frame.locator("#ot-status").inner_text() == "Looking up order 1003…"
    # Then the whole record, flags and headline included, and the status falls quiet.
    frame.locator('[data-code="ERP_REFUND_NOT_AT_PROCESSOR"]').wait_for(timeout=15000)
    frame.locator(".ot-headline").wait_for(timeout=5000)
    assert frame.locator("#ot-record").get_attribute("aria-busy") is None
    assert frame.locator("#ot-status").inner_text() == ""


def test_posting_the_same_summary_again_asks_first(live_app, page, sandbox):
    page.goto(f"{live_app}/sandbox/tickets/103")
    frame = sidebar(page)
    frame.locator('[data-ot-action="note"]').wait_for(timeout=15000)
    sign_in(page, frame)
    frame.locator('[data-ot-action="note"]').click()
    frame.locator(".ot-action-status.ok").wait_for(timeout=15000)
    page.goto(f"{live_app}/sandbox/tickets/103")  # re-open the ticket
    frame = sidebar(page)
    frame.locator(".ot-posted").wait_for(timeout=15000)
    # The same browser picks the sign-in up again, and the history says who posted.
    frame.locator("#ot-agent >> text=posted as Sam Agent").wait_for(timeout=15000)
    assert "by Sam Agent" in frame.locator(".ot-posted").inner_text()
    note = frame.locator('[data-ot-action="note"]')
    note.click()
    assert "Post it again?" in frame.locator(".ot-action-status").inner_text()
    assert len([c for c in sandbox.state.zendesk.ticket(103)["comments"] if not c["public"]]) == 1
    note.click()
    frame.locator(".ot-action-status.ok").wait_for(timeout=15000)
    assert len([c for c in sandbox.state.zendesk.ticket(103)["comments"] if not c["public"]]) == 2


def test_back_to_a_ticket_opens_the_sidebar_afresh(live_app, page):
    page.goto(f"{live_app}/sandbox/tickets/103")
    sidebar(page).locator('[data-code="ERP_REFUND_NOT_AT_PROCESSOR"]').wait_for(timeout=15000)
    page.goto(f"{live_app}/sandbox/tickets/102")
    sidebar(page).locator(".ot-headline").wait_for(timeout=15000)
    page.go_back()
    frame = sidebar(page)
    frame.locator('[data-code="ERP_REFUND_NOT_AT_PROCESSOR"]').wait_for(timeout=15000)
    assert "already used" not in frame.locator("body").inner_text()


def test_an_agent_zendesk_keeps_off_a_ticket_is_told_so_and_nothing_is_written(live_app, page,
                                                                               sandbox):
    page.goto(f"{live_app}/sandbox/tickets/103")
    frame = sidebar(page)
    frame.locator('[data-ot-action="note"]').wait_for(timeout=15000)
    sign_in(page, frame, user_id=9003, name="Riley Restricted")
    frame.locator('[data-ot-action="note"]').click()
    frame.locator(".ot-action-status.fail").wait_for(timeout=15000)
    assert "doesn't let Riley Restricted update ticket 103" in frame.locator(
        ".ot-action-status").inner_text()
    assert [c for c in sandbox.state.zendesk.ticket(103)["comments"] if not c["public"]] == []
    frame.locator("#ot-agent button").click()  # sign out
    frame.locator("#ot-agent >> text=sign in as yourself").wait_for(timeout=15000)


def _enable(app, features, **settings):
    from plugin.tenant_settings import as_changes, validate_changes
    from tests.conftest import repo_of

    with repo_of(app) as repo:
        tenant = repo.find("zendesk:order-truth-sandbox:1")
        repo.update_settings(tenant.id, {"features": features,
                                         **as_changes(validate_changes(settings))})


def _processor(app, sandbox, system):
    """Point the sandbox Zendesk installation's processor at `system` (same shop, same card)."""
    from tests.conftest import repo_of, use_shopify_payments

    if system == "stripe":
        return
    with repo_of(app) as repo:
        use_shopify_payments(repo, repo.find("zendesk:order-truth-sandbox:1").id, sandbox.url)


@pytest.mark.parametrize(("system", "payment"), [
    ("stripe", "pi_Sbx1005"), ("shopify_payments", "gid://shopify/OrderTransaction/100501")])
def test_a_refund_from_the_sidebar_confirm_refund_record_and_note(app, live_app, page, sandbox,
                                                                  system, payment):
    _processor(app, sandbox, system)
    _enable(app, {"refunds": True}, refund_roles="admin,agent")
    page.goto(f"{live_app}/sandbox/tickets/105")
    frame = sidebar(page)
    frame.locator(".ot-refund summary").wait_for(timeout=15000)
    sign_in(page, frame)
    frame.locator(".ot-refund summary").click()
    assert "up to $65.00" in frame.locator(".ot-refund select[name=payment_id]").inner_text()
    frame.locator(".ot-refund input[name=amount]").fill("20")
    frame.locator(".ot-refund-form button[type=submit]").click()
    frame.locator(".ot-refund-confirm:not([hidden])").wait_for(timeout=15000)
    summary = frame.locator(".ot-refund-summary").inner_text()
    assert summary.startswith("Refund $20.00 to ") and payment in summary
    assert sandbox.state.ledger.refunds() == []  # the confirm step did nothing yet
    frame.locator("[data-ot-refund-go]").dblclick()
    frame.locator("#ot-context >> text=Refunded $20.00").wait_for(timeout=15000)
    made = sandbox.state.ledger.refunds()
    assert len(made) == 1 and made[0]["amount"] == 2000
    # The record is fetched afresh: $45.00 is what's left now.
    frame.locator(".ot-refund select[name=payment_id] >> text=up to $45.00").wait_for(
        state="attached", timeout=15000)
    notes = [c for c in sandbox.state.zendesk.ticket(105)["comments"] if not c["public"]]
    assert len(notes) == 1 and notes[0]["author_id"] == 9002
    assert "refunded $20.00" in notes[0]["body"]


def test_resolving_shows_the_outcome_applies_it_once_and_the_ticket_shows_it(app, live_app,
                                                                            page, sandbox):
    _enable(app, {"resolve_ticket": True})
    page.goto(f"{live_app}/sandbox/tickets/115")
    frame = sidebar(page)
    frame.locator("[data-ot-resolve-review]").wait_for(timeout=15000)
    sign_in(page, frame)
    frame.locator("[data-ot-resolve-review]").click()
    frame.locator(".ot-resolve-confirm:not([hidden])").wait_for(timeout=15000)
    assert "Refunded in full" in frame.locator(".ot-resolve-outcome").inner_text()
    changes = frame.locator(".ot-resolve-changes").inner_text()
    assert "Set the status to solved." in changes and "order-truth-refunded" in changes
    assert sandbox.state.zendesk.ticket(115)["status"] == "open"  # the confirm step did nothing
    frame.locator("[data-ot-resolve-go]").dblclick()
    frame.locator("#ot-context >> text=Resolved").wait_for(timeout=15000)
    ticket = sandbox.state.zendesk.ticket(115)
    assert ticket["status"] == "solved" and "order-truth-refunded" in ticket["tags"]
    assert len([c for c in ticket["comments"] if not c["public"]]) == 1
    page.goto(f"{live_app}/sandbox/tickets/115")
    assert page.locator(".sb-status").inner_text() == "solved"
    assert page.locator(".sb-refund-status").inner_text() == "refunded"


def test_cancelling_a_flagged_refund_confirm_cancel_once_and_the_flag_goes(app, live_app, page,
                                                                          sandbox):
    _enable(app, {"cancel_refunds": True})
    page.goto(f"{live_app}/sandbox/tickets/107")
    frame = sidebar(page)
    frame.locator('[data-ot-cancel="re_Sbx1007b"]').wait_for(timeout=15000)
    sign_in(page, frame)
    frame.locator('[data-ot-cancel="re_Sbx1007b"]').click()
    frame.locator(".ot-cancel-confirm:not([hidden])").wait_for(timeout=15000)
    assert "$30.00" in frame.locator(".ot-cancel-summary").inner_text()
    assert sandbox.state.ledger.as_now({"id": "re_Sbx1007b", "status": "requires_action"})[
        "status"] == "requires_action"  # the confirm step cancelled nothing
    frame.locator("[data-ot-cancel-go]").dblclick()
    frame.locator("#ot-context >> text=Cancelled refund re_Sbx1007b").wait_for(timeout=15000)
    assert sandbox.state.ledger.as_now({"id": "re_Sbx1007b", "status": "requires_action"})[
        "status"] == "canceled"
    # The record afresh: nothing left to cancel, and one note.
    frame.locator('[data-ot-cancel="re_Sbx1007b"]').wait_for(state="detached", timeout=15000)
    notes = [c for c in sandbox.state.zendesk.ticket(107)["comments"] if not c["public"]]
    assert len(notes) == 1 and "cancelled refund re_Sbx1007b" in notes[0]["body"]


def test_a_store_return_is_received_into_erp_inventory_once(app, live_app, page, sandbox):
    _enable(app, {"erp_item_receipts": True}, erp_receipt_roles="admin,agent")
    page.goto(f"{live_app}/sandbox/tickets/104")
    frame = sidebar(page)
    button = frame.locator("[data-ot-erp=erp_item_receipt]")
    button.wait_for(timeout=15000)
    assert "Store return not in inventory" in frame.locator("body").inner_text()
    sign_in(page, frame)
    button.click()
    frame.locator(".ot-erpfix-confirm:not([hidden])").wait_for(timeout=15000)
    steps = frame.locator(".ot-erpfix-steps li").all_inner_texts()
    assert len(steps) == 2 and "at Brooklyn Store" in steps[1]
    assert sandbox.state.netsuite.docs() == []  # the confirm step made nothing
    frame.locator("[data-ot-erpfix-go]").dblclick()
    frame.locator("#ot-context >> text=item receipt").wait_for(timeout=15000)
    kinds = sorted(doc["type"] for doc in sandbox.state.netsuite.docs())
    assert kinds == ["ItemRcpt", "RtnAuth"]
    frame.locator("[data-ot-erp]").wait_for(state="detached", timeout=15000)
    assert "Store return not in inventory" not in frame.locator("body").inner_text()
    notes = [c for c in sandbox.state.zendesk.ticket(104)["comments"] if not c["public"]]
    assert len(notes) == 1 and "item receipt" in notes[0]["body"]


def test_the_customer_sentence_is_drafted_into_the_reply_and_never_sent(live_app, page, sandbox):
    page.goto(f"{live_app}/sandbox/tickets/103")
    frame = sidebar(page)
    draft = frame.locator("[data-ot-reply]")
    draft.wait_for(timeout=15000)
    sentence = frame.locator(".ot-headline").inner_text()
    draft.click()  # the confirm step says what will be added
    assert sentence in frame.locator(".ot-draft-status").inner_text()
    assert page.locator("#sb-reply").input_value() == ""
    draft.click()
    frame.locator(".ot-draft-status >> text=Added to your reply").wait_for(timeout=5000)
    assert page.locator("#sb-reply").input_value() == sentence
    comments = sandbox.state.zendesk.ticket(103)["comments"]
    assert len(comments) == 1  # the customer's own message only: nothing was sent
