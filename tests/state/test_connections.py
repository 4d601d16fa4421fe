"""The session cookie leaves the headers Reflex keeps in tab state (and pickles into Redis
with several workers) and is held by this process for the life of the socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from iris_reflex.state import connections


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
    connections._cookies.clear()


def test_the_session_cookie_is_held_here_and_the_other_cookies_stay():
    data = {
        "sessionid": "sid-1",
        "headers": {"cookie": "theme=dark; iris_session=tok.en.value; lang=en", "host": "x"},
    }

    kept = connections.without_session_cookie("sid-1", data)

    assert kept["headers"] == {"cookie": "theme=dark; lang=en", "host": "x"}
    assert "tok.en.value" not in repr(kept)
    assert data["headers"]["cookie"].endswith("lang=en")  # Reflex's own cache is not edited
    assert connections.session_token("sid-1") == "tok.en.value"
    connections.forget("sid-1")
    assert connections.session_token("sid-1") is None


def test_a_socket_with_only_the_session_cookie_keeps_no_cookie_header():
    kept = connections.without_session_cookie(
        "sid-2", {"headers": {"cookie": "iris_session=abc", "origin": "http://localhost:3000"}}
    )
    assert kept["headers"] == {"origin": "http://localhost:3000"}
    assert connections.session_token("sid-2") == "abc"


@pytest.mark.parametrize("header", ["", "theme=dark", 'bad"cookie=\\'])
def test_without_a_session_cookie_nothing_is_held(header):
    data = {"headers": {"cookie": header}}
    connections._cookies["sid-3"] = "stale"  # a token the socket id had before
    assert connections.without_session_cookie("sid-3", data) == data
    assert connections.session_token("sid-3") is None
