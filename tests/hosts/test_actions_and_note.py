"""The write-back outbox and the note text, without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from plugin.connectors.base import UnavailableError, UpstreamTimeout
from plugin.core.reconcile import reconcile
from plugin.hosts import actions
from plugin.hosts.note import flag_tags, inert, marker, render_note
from plugin.store.db import Store
from plugin.store.models import Installation, TicketAction
from tests.core.builders import NOW, ORDER, cref, memo, payment, ra, results, sales_order


class FakeZendesk:
    """Records notes; can fail before or after a write lands."""

    def __init__(self, fail_before=0, fail_after=0):
        self.notes: list[str] = []
        self.tags: list[str] = []
        self.fail_before, self.fail_after = fail_before, fail_after

    def post_internal_note(self, ticket_id, body):
        if self.fail_before:
            self.fail_before -= 1
            raise UnavailableError("HTTP 503", system="zendesk", http_status=503)
        self.notes.append(body)
        if self.fail_after:
            self.fail_after -= 1
            raise UpstreamTimeout("timed out waiting for a response", system="zendesk")

    def note_exists(self, ticket_id, mark):
        return any(mark in n for n in self.notes)

    def add_tags(self, ticket_id, tags):
        self.tags.extend(t for t in tags if t not in self.tags)
        return list(self.tags)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path):
    """The outbox on SQLite and, when configured, PostgreSQL (its leases are SQL updates)."""
    admin = schema = None
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    else:
        from tests.test_store import _pg_store

        store, admin, schema = _pg_store()
    store.migrate()
    with store.session() as s:
        s.add(Installation(key="zendesk:acme:1", host="zendesk", name="Acme", status="active",
                           settings={}))
        s.commit()
        inst_id = s.scalar(select(Installation.id))
        yield s, inst_id
    store.dispose()
    if admin is not None:
        from sqlalchemy import text

        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def submit(db, api, key="note-abc12345", kind="note", ticket="7", actor=("9002", "Sam Agent")):
    s, inst = db
    return actions.submit(s, api, installation_id=inst, ticket_id=ticket, order_number="1001",
                          kind=kind, key=key, payload_factory=lambda: {
                              "body": f"summary\n{marker(key)}", "tags": ["order-truth-over_refund"]},
                          actor=actor, sleep=lambda _s: None)


def test_same_key_writes_once(db):
    api = FakeZendesk()
    assert submit(db, api).status == "done"
    assert submit(db, api).status == "done"
    assert len(api.notes) == 1


def test_lost_response_is_detected_by_marker(db):
    api = FakeZendesk(fail_after=1)
    assert submit(db, api).status == "done"
    assert len(api.notes) == 1


def test_transient_failure_is_retried_with_backoff(db):
    waits = []
    s, inst = db
    api = FakeZendesk(fail_before=2)
    result = actions.submit(s, api, installation_id=inst, ticket_id="7", order_number="1001",
                            kind="note", key="note-k2", payload_factory=lambda: {"body": "x"},
                            sleep=waits.append)
    assert result.status == "done" and len(api.notes) == 1
    assert waits == list(actions.BACKOFF_SECONDS)


def test_exhausted_attempts_fail_then_retry_pending_completes(db):
    s, inst = db
    api = FakeZendesk(fail_before=5)
    assert submit(db, api).status == "failed"
    row = s.scalar(select(TicketAction))
    assert row.status == "failed" and row.attempts == 3 and "503" in row.last_error
    api.fail_before = 0
    asked_for = []

    def as_actor(action):
        asked_for.append(action.actor_id)
        return api

    assert actions.retry_pending(s, as_actor, now=datetime.now(UTC) + timedelta(minutes=2),
                                 sleep=lambda _s: None) == 1
    assert len(api.notes) == 1 and asked_for == ["9002"]  # retried as the agent who asked
    assert actions.retry_pending(s, as_actor, now=datetime.now(UTC) + timedelta(minutes=5),
                                 sleep=lambda _s: None) == 0


def test_a_write_nobody_is_known_to_have_asked_for_is_not_retried(db):
    """Rows from before writes went out as the agent: never sent with anyone else's rights."""
    s, inst = db
    api = FakeZendesk(fail_before=5)
    assert submit(db, api, actor=None).status == "failed"
    api.fail_before = 0
    assert actions.retry_pending(s, lambda _a: api, now=datetime.now(UTC) + timedelta(minutes=2),
                                 sleep=lambda _s: None) == 0
    row = s.scalar(select(TicketAction))
    assert row.status == "rejected" and "post it again" in row.last_error and api.notes == []


def test_another_agents_key_is_not_theirs_to_send(db):
    api = FakeZendesk(fail_before=5)
    assert submit(db, api, key="note-shared").status == "failed"
    api.fail_before = 0
    result = submit(db, api, key="note-shared", actor=("9003", "Riley Restricted"))
    assert result.status == "failed" and "another agent" in result.message and api.notes == []


def test_in_flight_key_is_not_sent_again(db):
    s, inst = db
    s.add(TicketAction(installation_id=inst, ticket_id="7", order_number="1001", kind="note",
                       idempotency_key="note-busy", payload={"body": "x"}, status="sending",
                       attempts=1, lease_until=datetime.now(UTC) + timedelta(seconds=30)))
    s.commit()
    api = FakeZendesk()
    assert submit(db, api, key="note-busy").status == "in_progress"
    assert api.notes == []


def test_tags(db):
    api = FakeZendesk()
    result = submit(db, api, key="tags-1", kind="tags")
    assert result.status == "done" and result.tags == ("order-truth-over_refund",)


@pytest.mark.parametrize(("raw", "expected"), [
    ("<script>alert(1)</script>", r"\<script\>alert\(1\)\</script\>"),
    ("[click](http://evil)", r"\[click\]\(http://evil\)"),
    ("**bold** _x_ `code`", r"\*\*bold\*\* \_x\_ \`code\`"),
    ("line\nbreak\x07", "line break"),
])
def test_upstream_text_is_inert(raw, expected):
    assert inert(raw) == expected


def test_note_lists_headline_flags_sources_and_marker():
    truth = reconcile(ORDER, results(payments=[payment()], so=sales_order(), ras=[ra(code="G")],
                                     memos=[memo()], crefs=[cref()], erp_status=None), NOW)
    body = render_note(truth, "note-xyz")
    assert body.startswith("Order Truth: order #1001\n")
    assert "[critical] ERP refund never reached the processor" in body
    assert "- ERP (netsuite): ok, as of 2026-03-10 12:00 UTC" in body
    assert body.rstrip().endswith(marker("note-xyz"))
    assert flag_tags(truth) == ["order-truth-erp_refund_not_at_processor"]


def test_abandoned_write_is_taken_over_and_checked_before_resending(db):
    """A worker died after Zendesk accepted the note: the next click finds it, posts nothing."""
    s, inst = db
    api = FakeZendesk()
    api.notes.append(f"summary\n{marker('note-dead1')}")
    s.add(TicketAction(installation_id=inst, ticket_id="7", order_number="1001", kind="note",
                       idempotency_key="note-dead1", payload={"body": "x"}, status="sending",
                       attempts=1, lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    s.commit()
    assert submit(db, api, key="note-dead1").status == "done"
    assert len(api.notes) == 1


def test_retry_and_click_cannot_both_send(db):
    s, inst = db
    api = FakeZendesk(fail_before=3)
    assert submit(db, api).status == "failed"
    row = s.scalar(select(TicketAction))
    assert actions._claim(s, row.id) is True
    assert actions._claim(s, row.id) is False  # the second sender loses the lease


def test_refusal_is_not_retried_forever(db):
    s, inst = db

    class Closed(FakeZendesk):
        def post_internal_note(self, ticket_id, body):
            from plugin.connectors.base import BadResponseError

            raise BadResponseError("HTTP 422 RecordInvalid: ticket is closed", system="zendesk",
                                   http_status=422)

    result = submit(db, Closed())
    assert result.status == "rejected"
    assert s.scalar(select(TicketAction)).status == "rejected"
    assert submit(db, Closed()).status == "rejected"


def test_a_note_bounds_and_cleans_upstream_text():
    from plugin.hosts.note import MAX_NOTE_TEXT, inert

    text = inert("refund \u202eDNUFER" + "x" * 10_000)
    assert "\u202e" not in text
    assert len(text) == MAX_NOTE_TEXT and text.endswith("…")



class LateZendesk(FakeZendesk):
    """Times out on the note write, then applies it later (as Zendesk may)."""

    def __init__(self):
        super().__init__()
        self.late: list[str] = []
        self.posts = 0

    def post_internal_note(self, ticket_id, body):
        self.posts += 1
        if self.posts == 1:
            self.late.append(body)  # accepted, not yet visible
            raise UpstreamTimeout("timed out waiting for a response", system="zendesk")
        self.notes.append(body)

    def land(self):
        self.notes.extend(self.late)
        self.late.clear()


def test_a_note_zendesk_applies_after_our_timeout_is_never_posted_twice(db):
    s, inst = db
    api = LateZendesk()
    first = submit(db, api, key="note-late")
    assert first.status == "failed" and api.posts == 1  # no second PUT in the same request
    again = submit(db, api, key="note-late")  # the agent clicks again at once
    assert again.status == "in_progress" and api.posts == 1
    api.land()  # Zendesk applies the first write late
    assert submit(db, api, key="note-late").status == "done"
    assert api.posts == 1 and len(api.notes) == 1


def test_an_unconfirmed_note_that_never_lands_is_posted_once_after_the_settle_time(db):
    s, inst = db
    api = LateZendesk()
    submit(db, api, key="note-lost")
    api.late.clear()  # it really was lost
    row = s.scalar(select(TicketAction).where(TicketAction.idempotency_key == "note-lost"))
    row.unconfirmed_until = datetime.now(UTC) - timedelta(seconds=1)  # the settle time passed
    s.commit()
    assert submit(db, api, key="note-lost").status == "done"
    assert api.posts == 2 and len(api.notes) == 1
