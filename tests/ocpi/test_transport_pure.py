"""The pure transport pieces: DateTime, tokens in headers, pagination, envelope."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evroam.ocpi.envelope import Envelope, envelope_for
from evroam.ocpi.headers import encode_token, parse_authorization
from evroam.ocpi.pagination import join_url, next_link, parse_next_link, parse_page_request
from evroam.ocpi.status import OcpiError
from evroam.ocpi.types import format_datetime, parse_datetime


@pytest.mark.parametrize("text, expected", [
    ("2015-06-29T20:39:09Z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
    ("2015-06-29T20:39:09", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),  # no designator = UTC
    ("2015-06-29T20:39:09.123Z", datetime(2015, 6, 29, 20, 39, 9, 123000, tzinfo=UTC)),
    ("2015-06-29T20:39:09.5", datetime(2015, 6, 29, 20, 39, 9, 500000, tzinfo=UTC)),
    ("2015-06-29T20:39:09.123456789Z", datetime(2015, 6, 29, 20, 39, 9, 123456, tzinfo=UTC)),
])
def test_datetime_accepts_every_form_the_spec_allows(text, expected):
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["2015-06-29T20:39:09+00:00", "2015-06-29T20:39:09+0200", "2015-06-29T20:39:09-05:00",
                                  "2015-06-29 20:39:09Z", "2015-06-29", "2015-13-29T20:39:09Z", "20:39:09",
                                  "2015-06-29T25:39:09Z", "", "2015-06-29T20:39:09z"])
def test_datetime_rejects(text):
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_datetime_offset_message_is_specific():
    with pytest.raises(ValueError, match="offset"):
        parse_datetime("2015-06-29T20:39:09+00:00")


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)))
@settings(max_examples=200, deadline=None)
def test_datetime_canonical_form_round_trips(dt):
    text = format_datetime(dt)
    assert text.endswith("Z") and "+" not in text
    assert parse_datetime(text) == dt
    assert format_datetime(parse_datetime(text)) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64))
def test_token_header_round_trips(token):
    header = encode_token(token)
    assert header == "Token " + base64.b64encode(token.encode()).decode()
    decoded, raw = parse_authorization(header)
    assert decoded == token


@pytest.mark.parametrize("value", [None, "", "Bearer abc", "Token", "Token   ", "Basic YWJj"])
def test_authorization_header_garbage(value):
    assert parse_authorization(value) == (None, None)


def test_authorization_scheme_is_case_insensitive_and_raw_kept():
    decoded, raw = parse_authorization("token " + base64.b64encode(b"abc").decode())
    assert (decoded, raw) == ("abc", "YWJj")
    # Not Base64: only the raw form is offered (used only for partners configured for it).
    assert parse_authorization("Token abc-def!") == (None, "abc-def!")


def test_next_link_repeats_filters_and_is_absent_on_last_page():
    page = parse_page_request({"date_from": "2020-01-01T00:00:00", "date_to": "2020-02-01T00:00:00Z",
                               "limit": "10", "offset": "20"}, max_limit=50)
    url = "https://ocpi.example.com/ocpi/2.2.1/locations?date_from=2020-01-01T00:00:00&date_to=2020-02-01T00:00:00Z&offset=20&limit=10"
    link = next_link(url, page, total=35)
    target = parse_next_link(link)
    assert target == ("https://ocpi.example.com/ocpi/2.2.1/locations?date_from=2020-01-01T00%3A00%3A00Z"
                      "&date_to=2020-02-01T00%3A00%3A00Z&offset=30&limit=10")
    assert next_link(url, page, total=30) is None


def test_page_limit_is_capped_by_server_maximum():
    assert parse_page_request({"limit": "1000"}, max_limit=100).limit == 100
    assert parse_page_request({}, max_limit=100).limit == 100


@pytest.mark.parametrize("params", [{"limit": "0"}, {"offset": "-1"}, {"limit": "1.5"}, {"date_from": "x"}])
def test_bad_page_parameters(params):
    with pytest.raises(OcpiError) as ei:
        parse_page_request(params)
    assert ei.value.status_code == 2001


def test_sessions_date_from_required():
    with pytest.raises(OcpiError, match="date_from"):
        parse_page_request({}, date_from_required=True)


@pytest.mark.parametrize("base, segs, expected", [
    ("http://x/ocpi/2.2.1/tokens/", ("NL", "ABC", "123"), "http://x/ocpi/2.2.1/tokens/NL/ABC/123"),
    ("http://x/ocpi/2.2.1/tokens", ("/NL/", "ABC"), "http://x/ocpi/2.2.1/tokens/NL/ABC"),
    ("http://x/ocpi/", (), "http://x/ocpi"),
])
def test_join_url_never_doubles_or_drops_slashes(base, segs, expected):
    assert join_url(base, *segs) == expected


def test_envelope_bytes_parse_back():
    raw = envelope_for({"a": 1}, status_code=1000, status_message="ok")
    env = Envelope.model_validate_json(raw)
    assert (env.data, env.status_code, env.status_message) == ({"a": 1}, 1000, "ok")
    assert "data" not in json.loads(envelope_for(None, status_code=2004))
