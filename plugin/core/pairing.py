"""Pair money movements with the bookings that record them, many-to-many, in named passes.

A *movement* is money a primary system moved (a processor refund, a shop refund); a
*booking* is the ERP's record of it (a customer refund or cash refund with its credit
memos, or an approved memo alone). Finance books ordinary refunds in ways a one-to-one
join misreads: one refund as two memos, two refunds as one, a batch days later, a cent of
rounding, or quoting a failed attempt instead of its retry. The passes, in order:

1. identifiers either side quotes (connected components, so splits and batches group);
2. retries: a booking that quotes a failed attempt also books that attempt's retry;
3. per return: the unpaired movements and bookings of one return whose sums agree;
4. per order and currency: everything left, when the sums agree and no two returns are
   mixed (a batch of several returns' refunds booked as one document is fine);
5. amounts: one booking to one movement (or a small set summing to it), nearest in time;
6. leftovers: what one return still has on both sides belongs together whatever the
   amounts (the difference is a mismatch to explain, not a missing refund); and a lone
   booking with a lone untagged movement near it in time.

Failed attempts are then tied to a later live refund of the same amount on the same
payment: the retry (a booking may have quoted either).

Every input is sorted first, so no result depends on the order a vendor listed records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

from .money import Money

# Movement sets tried in pass 5 are at most this large (orders have a handful of refunds).
_MAX_SUBSET = 4


@dataclass(frozen=True)
class Movement:
    """Money a primary system moved (or tried to)."""

    key: str
    amount: Money
    at: datetime
    live: bool  # succeeded, pending or unknown: it counts
    ids: frozenset[str]  # ids it is known by
    quoted: frozenset[str] = frozenset()  # ids of other documents it quotes
    return_key: str | None = None
    payment_id: str | None = None
    tender: str | None = None  # how it moved, when the pairing must not mix tenders


@dataclass(frozen=True)
class Booking:
    """The ERP's record of paying (or approving) money back."""

    key: str
    amount: Money
    at: datetime
    ids: frozenset[str]
    quoted: frozenset[str] = frozenset()
    return_key: str | None = None
    paid: bool = True  # False: approved (an open credit memo), not yet paid
    tender: str | None = None  # as for Movement; None: any


@dataclass(frozen=True)
class Match:
    """Bookings and the movements that confirm them."""

    bookings: tuple[Booking, ...]
    movements: tuple[Movement, ...]
    how: str  # "id" | "retry" | "return" | "order" | "amount" | "leftover"
    difference: int  # bookings − live movements, in minor units of `currency`
    currency: str
    tolerance: int

    @property
    def exact(self) -> bool:
        return self.difference == 0


@dataclass
class Pairing:
    """The result: matches, and what stayed unpaired on each side."""

    matches: list[Match] = field(default_factory=list)
    bookings: list[Booking] = field(default_factory=list)  # unconfirmed
    movements: list[Movement] = field(default_factory=list)  # unbooked
    retries: dict[str, str] = field(default_factory=dict)  # retry key → failed attempt key

    def match_of_movement(self, key: str) -> Match | None:
        return next((m for m in self.matches if any(v.key == key for v in m.movements)), None)

    def match_of_booking(self, key: str) -> Match | None:
        return next((m for m in self.matches if any(b.key == key for b in m.bookings)), None)


def pair(bookings: Iterable[Booking], movements: Iterable[Movement], *,
         tolerance_per_document: int = 1, extra_tolerance: int = 0,
         window: timedelta = timedelta(hours=48)) -> Pairing:
    """Run the passes; see the module docstring."""
    books = sorted(bookings, key=lambda b: (b.at, b.key))
    moves = sorted(movements, key=lambda m: (m.at, m.key))
    state = _State(books, moves, tolerance_per_document, extra_tolerance)
    state.by_identifiers()
    state.by_return()
    state.by_order()
    state.by_amount(window)
    state.leftovers(window)
    state.retries_by_amount()
    return state.result()


@dataclass
class _State:
    books: list[Booking]
    moves: list[Movement]
    per_doc: int
    extra: int
    out: Pairing = field(default_factory=Pairing)
    used_books: set[str] = field(default_factory=set)
    used_moves: set[str] = field(default_factory=set)

    def tolerance(self, books: Sequence[Booking], moves: Sequence[Movement]) -> int:
        """One minor unit of rounding per document on the busier side, plus any extra."""
        return self.per_doc * max(len(books), len(moves), 1) + self.extra

    def free_books(self) -> list[Booking]:
        return [b for b in self.books if b.key not in self.used_books]

    def free_moves(self, live_only: bool = True) -> list[Movement]:
        return [m for m in self.moves if m.key not in self.used_moves and (m.live or not live_only)]

    def take(self, books: Sequence[Booking], moves: Sequence[Movement], how: str) -> None:
        currency = books[0].amount.currency
        live = [m for m in moves if m.live]
        booked = sum(b.amount.amount_minor for b in books)
        moved = sum(m.amount.amount_minor for m in live)
        self.out.matches.append(Match(tuple(books), tuple(moves), how, booked - moved, currency,
                                      self.tolerance(books, live)))
        self.used_books.update(b.key for b in books)
        self.used_moves.update(m.key for m in moves)

    # -- pass 1 and 2: identifiers, then retries of quoted failed attempts

    def by_identifiers(self) -> None:
        edges: dict[str, set[str]] = {}
        for b in self.books:
            for m in self.moves:
                if b.amount.currency == m.amount.currency and (b.quoted & m.ids or m.quoted & b.ids):
                    edges.setdefault(b.key, set()).add(m.key)
        retried = self._retries(edges)
        groups = _components(edges)
        by_key = {m.key: m for m in self.moves}
        books = {b.key: b for b in self.books}
        for book_keys, move_keys in groups:
            bs = [books[k] for k in sorted(book_keys, key=lambda k: (books[k].at, k))]
            ms = sorted((by_key[k] for k in move_keys), key=lambda m: (m.at, m.key))
            self.take(bs, ms, "retry" if any(m.key in retried for m in ms) else "id")

    def _retries(self, edges: dict[str, set[str]]) -> set[str]:
        """Link a booking that quotes a failed attempt to the attempt's successful retry."""
        quoted_elsewhere = {k for keys in edges.values() for k in keys}
        by_key = {m.key: m for m in self.moves}
        added: set[str] = set()
        for book_key in sorted(edges):
            for failed_key in sorted(edges[book_key]):
                failed = by_key[failed_key]
                if failed.live:
                    continue
                retry = next((m for m in self.moves
                              if m.live and m.key not in quoted_elsewhere and m.key not in added
                              and m.at >= failed.at and m.amount == failed.amount
                              and m.payment_id == failed.payment_id
                              and _compatible(m.return_key, failed.return_key)), None)
                if retry is not None:
                    edges[book_key].add(retry.key)
                    added.add(retry.key)
                    self.out.retries[retry.key] = failed.key
        return added

    # -- pass 3: one return's sums

    def by_return(self) -> None:
        keys = sorted({b.return_key for b in self.free_books() if b.return_key})
        for key in keys:
            books = [b for b in self.free_books() if b.return_key == key]
            moves = [m for m in self.free_moves() if m.return_key == key]
            self._if_sums_agree(books, moves, "return")

    # -- pass 4: what is left of the order, per currency

    def by_order(self) -> None:
        for currency in sorted({b.amount.currency for b in self.free_books()}):
            books = [b for b in self.free_books() if b.amount.currency == currency]
            moves = [m for m in self.free_moves() if m.amount.currency == currency]
            if _conflicting_returns(books, moves):
                continue
            self._if_sums_agree(books, moves, "order")

    def _if_sums_agree(self, books: list[Booking], moves: list[Movement], how: str) -> None:
        currencies = {b.amount.currency for b in books} | {m.amount.currency for m in moves}
        if not books or not moves or len(currencies) != 1 or _mixed_tenders(books, moves):
            return
        booked = sum(b.amount.amount_minor for b in books)
        moved = sum(m.amount.amount_minor for m in moves)
        if abs(booked - moved) <= self.tolerance(books, moves):
            self.take(books, moves, how)

    # -- pass 5: amounts, one booking at a time, nearest in time

    def by_amount(self, window: timedelta) -> None:
        for book in self.free_books():
            moves = [m for m in self.free_moves() if fits(book, m)]
            chosen = _best_subset(book, moves, self.tolerance, window)
            if chosen:
                self.take([book], chosen, "amount")
        # And the other way round: one refund booked as several documents.
        for move in self.free_moves():
            books = [b for b in self.free_books() if fits(b, move)]
            for size in range(2, min(_MAX_SUBSET, len(books)) + 1):
                sets = [c for c in combinations(books, size)
                        if abs(sum(b.amount.amount_minor for b in c) - move.amount.amount_minor)
                        <= self.tolerance(c, [move])]
                if sets:
                    best = min(sets, key=lambda c: (_spread(move.at, [b.at for b in c]),
                                                    [b.key for b in c]))
                    self.take(list(best), [move], "amount")
                    break

    # -- pass 6: leftovers

    def leftovers(self, window: timedelta) -> None:
        keys = sorted({b.return_key for b in self.free_books() if b.return_key})
        for key in keys:
            books = [b for b in self.free_books() if b.return_key == key]
            moves = [m for m in self.free_moves() if m.return_key == key]
            currencies = {b.amount.currency for b in books} | {m.amount.currency for m in moves}
            if books and moves and len(currencies) == 1 \
                    and not _mixed_tenders(books, moves):
                self.take(books, moves, "leftover")
        for currency in sorted({b.amount.currency for b in self.free_books()}):
            books = [b for b in self.free_books() if b.amount.currency == currency]
            moves = [m for m in self.free_moves() if m.amount.currency == currency]
            if len(books) == 1 and len(moves) == 1 and moves[0].return_key is None \
                    and fits(books[0], moves[0]) and abs(books[0].at - moves[0].at) <= window:
                self.take(books, moves, "leftover")

    # -- retries of failed attempts nobody quoted

    def retries_by_amount(self) -> None:
        retried = set(self.out.retries.values())
        for failed in self.moves:
            if failed.live or failed.key in retried:
                continue
            retry = next((m for m in self.moves
                          if m.live and m.key not in self.out.retries and m.at >= failed.at
                          and m.amount == failed.amount and m.payment_id == failed.payment_id
                          and _compatible(m.return_key, failed.return_key)), None)
            if retry is not None:
                self.out.retries[retry.key] = failed.key
                retried.add(failed.key)

    def result(self) -> Pairing:
        self.out.bookings = self.free_books()
        self.out.movements = self.free_moves(live_only=False)
        return self.out


def _best_subset(book: Booking, moves: list[Movement],
                 tolerance: Callable[[Sequence[Booking], Sequence[Movement]], int],
                 window: timedelta) -> list[Movement]:
    """The movement (or smallest set of movements) whose sum is the booking's, nearest in time.

    With several equal candidates, those within `window` of the booking come first, then the
    nearest; with one candidate there is no window (a batch may post days later).
    """
    for size in range(1, min(_MAX_SUBSET, len(moves)) + 1):
        fits = [list(c) for c in combinations(moves, size)
                if abs(sum(m.amount.amount_minor for m in c) - book.amount.amount_minor)
                <= tolerance([book], c)]
        if fits:
            return min(fits, key=lambda c: (_spread(book.at, [m.at for m in c]) > window,
                                            _spread(book.at, [m.at for m in c]),
                                            [m.key for m in c]))
    return []


def _spread(at: datetime, others: list[datetime]) -> timedelta:
    return max(abs(at - o) for o in others)


def _compatible(a: str | None, b: str | None) -> bool:
    """Two return keys can belong together unless both are known and differ."""
    return a is None or b is None or a == b


# Tenders that are one thing to the customer: value to spend in the shop again.
_SAME_TENDER = {"gift_card": "credit", "store_credit": "credit"}


def tender_family(tender: str | None) -> str | None:
    return _SAME_TENDER.get(tender, tender) if tender else None


def fits(b: Booking, m: Movement) -> bool:
    """Could this booking record this movement: currency, return and tender all agree."""
    return (b.amount.currency == m.amount.currency and _compatible(m.return_key, b.return_key)
            and not _mixed_tenders([b], [m]))


def _mixed_tenders(books: Sequence[Booking], moves: Sequence[Movement]) -> bool:
    """Known tenders on the two sides that differ (cash booked against store credit …)."""
    known = ({tender_family(b.tender) for b in books}
             | {tender_family(m.tender) for m in moves}) - {None}
    return len(known) > 1


def _conflicting_returns(books: list[Booking], moves: list[Movement]) -> bool:
    """Both sides name returns, and not all the same one: summing them would net gaps out."""
    on_books = {b.return_key for b in books if b.return_key}
    on_moves = {m.return_key for m in moves if m.return_key}
    return bool(on_books and on_moves) and len(on_books | on_moves) > 1


def _components(edges: dict[str, set[str]]) -> list[tuple[set[str], set[str]]]:
    """Connected components of the booking–movement graph, in a stable order."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for book, moves in edges.items():
        for move in moves:
            a, b = find("b:" + book), find("m:" + move)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, tuple[set[str], set[str]]] = {}
    for node in sorted(parent):
        root = find(node)
        books, moves = groups.setdefault(root, (set(), set()))
        (books if node.startswith("b:") else moves).add(node[2:])
    return [groups[root] for root in sorted(groups)]
