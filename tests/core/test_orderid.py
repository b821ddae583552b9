"""Order ID parsing happens before any upstream is asked."""

import pytest

from plugin.core.orderid import InvalidOrderId, parse_order_id


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
