import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadbench.units import parse_duration, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("10s", 10.0), ("2m", 120.0), ("1h", 3600.0), ("250us", 0.00025),
     ("1.5s", 1.5), (3, 3.0), (0.25, 0.25), ("7", 7.0), (" 10 s ", 10.0)],
)
def test_parse_duration(text, seconds):
    assert math.isclose(parse_duration(text), seconds)


@pytest.mark.parametrize("text", ["", "ten", "10 parsecs", "-1s", "1e999", True, "10ss"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "rate"), [("1000", 1000.0), ("1000/s", 1000.0),
                                            ("60/m", 1.0), (250, 250.0), ("0.5/s", 0.5)])
def test_parse_rate(text, rate):
    assert math.isclose(parse_rate(text), rate)


@pytest.mark.parametrize("text", ["0", "-5/s", "fast", "10/d", "0/s"])
def test_parse_rate_rejects(text):
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_parse_size():
    assert parse_size("64kb") == 64000
    assert parse_size("1MiB") == 1024 * 1024
    assert parse_size(512) == 512
    with pytest.raises(ValueError, match="size"):
        parse_size("big")


@given(st.text(max_size=20))
def test_duration_parser_never_raises_other_errors(text):
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert value >= 0 and math.isfinite(value)
