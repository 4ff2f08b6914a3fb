"""Form parsing never fails with anything but a Twilio-style 400, whatever the bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edge_sfu.rest
from edge_sfu.errors import InvalidParameter
from edge_sfu.rest.forms import (
    URL_PATTERN,
    Field,
    _check,
    _decode,
    boolean,
    choice,
    integer,
    string,
    timestamp,
    url,
)
from edge_sfu.rest.rooms import CREATE_FIELDS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_body_parses_or_is_refused_cleanly(body: bytes) -> None:
    try:
        _check(_decode(body), CREATE_FIELDS)
    except InvalidParameter as exc:
        assert exc.status == 400


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(CREATE_FIELDS)), st.text(max_size=40), max_size=6))
def test_any_known_field_value_parses_or_is_refused_cleanly(form: dict[str, str]) -> None:
    from urllib.parse import urlencode

    try:
        _check(_decode(urlencode(form).encode()), CREATE_FIELDS)
    except InvalidParameter as exc:
        assert exc.status == 400


def test_types() -> None:
    fields = {
        "N": Field(integer(1, 5)),
        "B": Field(boolean),
        "C": Field(choice("POST", "GET", fold=True)),
        "S": Field(string(3)),
        "T": Field(timestamp),
        "L": Field(choice("VP8", "H264"), repeat=True),
    }
    got = _check(_decode(b"N=3&B=True&C=get&S=abc&T=2026-01-02T03:04:05Z&L=VP8&L=H264"), fields)
    assert got["N"] == 3 and got["B"] is True and got["C"] == "GET" and got["L"] == ["VP8", "H264"]
    assert got["T"].isoformat() == "2026-01-02T03:04:05+00:00"
    for bad in (
        b"N=0",
        b"N=1.5",
        b"N=%EF%BC%93",
        b"B=1",
        b"C=PUT",
        b"S=abcd",
        b"S=",
        b"S=%0a",
        b"T=now",
        b"X=1",
        b"N=1&N=2",
    ):
        with pytest.raises(InvalidParameter):
            _check(_decode(bad), fields)


@pytest.mark.parametrize(
    "value",
    [
        "https://hooks.example.com/status?room=a&x=%20",
        "http://127.0.0.1:8080",
        "http://a.b/",
        "http://a:65535/",
        "http://a:0",
    ],
)
def test_url_takes_what_the_openapi_pattern_allows(value: str) -> None:
    assert url()("StatusCallback", value) == value


# "https://0*" was accepted (urlsplit finds a host name in it) though the OpenAPI pattern,
# which clients validate against, refuses it.
@pytest.mark.parametrize(
    "value",
    [
        "https://0*",
        "https://a?x=1",
        "https://user@a/",
        "http://[::1]/",
        "ftp://a/",
        "https://a/ b",
        "http://a:65536/",
        "http://3Dx0:76675/J69k&?6",  # a port the schema once allowed and the API refused
    ],
)
def test_url_refuses_what_the_openapi_pattern_refuses(value: str) -> None:
    with pytest.raises(InvalidParameter):
        url()("StatusCallback", value)


def test_every_url_pattern_in_the_openapi_document_is_the_one_url_checks() -> None:
    document = (Path(edge_sfu.rest.__file__).parent / "openapi.yaml").read_text()
    patterns = re.findall(r"StatusCallback: \{[^}]*pattern: '([^']*)'", document)
    assert len(patterns) >= 4
    assert set(patterns) == {f"^{URL_PATTERN.pattern}$"}
