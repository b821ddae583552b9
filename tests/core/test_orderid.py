"""Order ID parsing happens before any upstream is asked."""

import pytest

from plugin.core.orderid import (
    DEFAULT_SHAPE,
    InvalidOrderId,
    check_shape,
    find_candidates,
    parse_order_id,
)


@pytest.mark.parametrize(("raw", "number", "name"), [
    ("1001", "1001", "#1001"), (" #1001 ", "1001", "#1001"), ("SH-1001.A", "SH-1001.A", "#SH-1001.A"),
])
def test_valid(raw, number, name):
    ref = parse_order_id(raw)
    assert (ref.number, ref.name) == (number, name)


@pytest.mark.parametrize(("raw", "reason"), [
    (None, "required"), ("", "required"), ("  ", "required"), ("#", "required"),
    ("10 01", "only letters"), ("1001'--", "only letters"), ("<b>", "only letters"),
    ("-1001", "only letters"), ("x" * 41, "at most 40"),
])
def test_invalid(raw, reason):
    with pytest.raises(InvalidOrderId, match=reason):
        parse_order_id(raw)


def test_prefix_is_per_installation():
    assert parse_order_id("1001", name_prefix="SH").name == "SH1001"


@pytest.mark.parametrize(("raw", "prefix", "number", "name"), [
    ("EU-1001", "EU-", "1001", "EU-1001"),   # the prefix is applied once, never doubled
    ("#EU-1001", "EU-", "1001", "EU-1001"),  # "#" and the prefix both typed
    ("eu-1001", "EU-", "1001", "EU-1001"),
    ("1001", "EU-", "1001", "EU-1001"),
    ("#1001", "EU-", "1001", "EU-1001"),
    ("#1001", "#", "1001", "#1001"),
    ("SH1001", "SH", "1001", "SH1001"),
])
def test_prefix_is_applied_exactly_once(raw, prefix, number, name):
    ref = parse_order_id(raw, name_prefix=prefix)
    assert (ref.number, ref.name) == (number, name)


SUBJECT, BODY = "the ticket subject", "the ticket description"


@pytest.mark.parametrize(("subject", "body", "prefix", "shape", "expected"), [
    # "order" followed by a word is not an order number.
    ("my order hasn't arrived, order #9999", "", "#", None, [("9999", SUBJECT)]),
    ("Where is my refund?", "Hi, this is about my order #1002. Thanks", "#", None,
     [("1002", BODY)]),
    ("Order 1001 and order no. 1002", "order number: 1003", "#", None,
     [("1001", SUBJECT), ("1002", SUBJECT), ("1003", BODY)]),
    ("Re: #1001", "re: #1001 again", "#", None, [("1001", SUBJECT)]),
    ("Call me on 0207 946 0000", "Zip 10001", "#", None, []),     # bare numbers don't count
    ("EU-1001 never came", "", "EU-", None, [("1001", SUBJECT)]),
    ("order EU-1001", "", "EU-", None, [("1001", SUBJECT)]),
    ("order #A-77", "", "#", r"[A-Z]-\d+", [("A-77", SUBJECT)]),
    ("order #12", "", "#", None, []),                             # too short for the shape
])
def test_ticket_text_candidates(subject, body, prefix, shape, expected):
    found = find_candidates([(SUBJECT, subject), (BODY, body)], name_prefix=prefix,
                            shape=shape or DEFAULT_SHAPE)
    assert [(c.order_id, c.where) for c in found] == expected


@pytest.mark.parametrize("shape", ["", "(a+)+", "(\\d*)*", "(?=x)\\d", "(\\d+)", "\\d*",
                                   "x" * 65, "[unclosed"])
def test_unsafe_or_useless_shapes_are_refused(shape):
    with pytest.raises(ValueError):
        check_shape(shape)


def test_a_plain_shape_is_accepted():
    assert check_shape(r" [A-Z]{2}\d{4,8} ") == r"[A-Z]{2}\d{4,8}"
