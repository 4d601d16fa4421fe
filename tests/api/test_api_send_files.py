"""Sending files with a message as ``multipart/form-data`` through the JSON API.

The media rules (types, limits, quota, cleaning) are tested on the service; here: the form
is translated faithfully, the attachments come back in the message's JSON, and a refused
message leaves none of the files it brought.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from iris_reflex.models import Attachment, Message
from iris_reflex.settings import get_settings
from tests import media_samples
from tests.api.test_api_openapi import (
    Headers,
    ada_and_bob,
    client_fixture,  # noqa: F401 (the ``client`` fixture)
    sign_up,
)


@pytest.fixture(autouse=True)
def uploads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    monkeypatch.setattr(get_settings(), "upload_dir", folder)
    return folder


def stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _send_form(
    client: TestClient,
    who: Headers,
    to: str,
    files: list[tuple[str, bytes, str]],
    **fields: str,
):
    return client.post(
        f"/api/conversations/{to}/messages",
        data=fields,
        files=[("files", f) for f in files],
        headers=who,
    )


def test_files_and_text_arrive_as_one_message(client):
    ada, bob = ada_and_bob(client)
    response = _send_form(
        client,
        ada,
        "bob",
        [("photo.png", media_samples.png(64, 48), "image/png"), ("notes.txt", b"hi", "x/y")],
        body="look",
        expires_in_seconds="60",
        timer_mode="after_read",
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["body"] == "look"
    assert (message["timer_seconds"], message["timer_mode"]) == (60, "after_read")
    photo, notes = message["attachments"]
    assert photo == {
        "id": photo["id"],
        "name": "photo.png",
        "type": "image/png",
        "kind": "image",
        "size": photo["size"],
        "width": 64,
        "height": 48,
        "url": f"/api/attachments/{photo['id']}",
        "thumbnail_url": f"/api/attachments/{photo['id']}/thumbnail",
    }
    assert notes["kind"] == "file"
    assert notes["type"] == "text/plain"
    assert notes["thumbnail_url"] is None
    assert notes["width"] is None
    [seen] = client.get("/api/conversations/ada/messages", headers=bob).json()
    assert seen["attachments"] == message["attachments"]
    download = client.get(photo["url"], headers=bob)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"


def test_files_without_text_and_empty_fields_mean_not_given(client):
    ada, _ = ada_and_bob(client)
    response = _send_form(
        client, ada, "bob", [("a.txt", b"a", "text/plain")], body="", expires_in_seconds=""
    )
    assert response.status_code == 201, response.text
    assert response.json()["body"] == ""
    assert response.json()["expires_at"] is None


def test_a_form_without_files_is_a_plain_message(client):
    ada, _ = ada_and_bob(client)
    response = client.post("/api/conversations/bob/messages", data={"body": "text"}, headers=ada)
    assert response.status_code == 201
    assert response.json()["attachments"] == []
    empty = client.post("/api/conversations/bob/messages", data={"body": " "}, headers=ada)
    assert empty.status_code == 422


def test_a_refused_message_leaves_none_of_its_files(client, session: Session, uploads):
    ada, _ = ada_and_bob(client)
    sign_up(client, "eve")
    for to, fields in (("eve", {}), ("bob", {"expires_in_seconds": "3"})):
        response = _send_form(client, ada, to, [("a.txt", b"a", "text/plain")], **fields)
        assert response.status_code in (404, 422), response.text
    assert session.exec(select(Attachment)).all() == []
    assert session.exec(select(Message)).all() == []
    assert stored_files(uploads) == []


def test_too_many_files_are_refused_and_leave_nothing(
    client, session: Session, uploads, monkeypatch
):
    monkeypatch.setattr(get_settings(), "max_files_per_message", 2)
    ada, _ = ada_and_bob(client)
    files = [(f"{i}.txt", b"%d" % i, "text/plain") for i in range(3)]
    response = _send_form(client, ada, "bob", files, body="three")
    assert response.status_code in (400, 422)
    assert isinstance(response.json()["detail"], str)
    assert session.exec(select(Attachment)).all() == []
    assert stored_files(uploads) == []


def test_a_file_over_the_limit_is_413_and_leaves_nothing(
    client, session: Session, uploads, monkeypatch
):
    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)
    ada, _ = ada_and_bob(client)
    big = ("big.bin", b"x" * (1024 * 1024 + 1), "application/octet-stream")
    response = _send_form(client, ada, "bob", [("ok.txt", b"ok", "text/plain"), big])
    assert response.status_code == 413
    assert "at most 1 MB" in response.json()["detail"]
    assert session.exec(select(Attachment)).all() == []
    assert stored_files(uploads) == []


def test_malformed_form_fields_are_422(client):
    ada, _ = ada_and_bob(client)
    for fields in ({"timer_mode": "never"}, {"expires_in_seconds": "soon"}, {"sender_id": "1"}):
        response = _send_form(client, ada, "bob", [("a.txt", b"a", "text/plain")], **fields)
        assert response.status_code == 422, fields
        assert isinstance(response.json()["detail"], list)


def test_uploaded_ids_can_be_sent_as_json(client):
    ada, bob = ada_and_bob(client)
    upload = client.post(
        "/api/uploads", params={"name": "n.txt"}, content=b"notes", headers=ada
    ).json()
    response = client.post(
        "/api/conversations/bob/messages",
        json={"body": "", "attachment_ids": [upload["id"]]},
        headers=ada,
    )
    assert response.status_code == 201, response.text
    assert [a["id"] for a in response.json()["attachments"]] == [upload["id"]]
    # Someone else's upload cannot be attached, and stays theirs (not discarded).
    other = client.post(
        "/api/uploads", params={"name": "b.txt"}, content=b"bob's", headers=bob
    ).json()
    refused = client.post(
        "/api/conversations/bob/messages",
        json={"body": "x", "attachment_ids": [other["id"]]},
        headers=ada,
    )
    assert refused.status_code == 422
    sent = client.post(
        "/api/conversations/ada/messages", json={"attachment_ids": [other["id"]]}, headers=bob
    )
    assert sent.status_code == 201
