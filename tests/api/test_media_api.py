"""Uploads and downloads over HTTP: limits, who may fetch, hardening headers, Range.

Real app (``create_api``), real database (SQLite and PostgreSQL), real files on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

from iris_reflex.api.app import create_api
from iris_reflex.models import Attachment, Message
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import auth, conversations, friends, passwords, sending
from iris_reflex.settings import get_settings
from tests import media_samples
from tests.services.builders import PASSWORD, befriend, register


@pytest.fixture(autouse=True)
def cheap_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hash_password", lambda _password: "not-a-real-hash")
    monkeypatch.setattr(passwords, "verify", lambda pw, _h: (pw == PASSWORD, None))


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    monkeypatch.setattr(get_settings(), "upload_dir", folder)
    return folder


@pytest.fixture
def client(database_url: str, session, uploads, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    with TestClient(create_api(), base_url="http://testserver") as test_client:
        yield test_client


def token_for(session, username: str) -> str:
    return auth.login(session, username=username, password=PASSWORD, ip="192.0.2.1").token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def people(session) -> dict[str, str]:
    """ada and bob are friends, eve is a stranger; their bearer tokens."""
    ada, bob, _ = register(session, "ada", "bob", "eve")
    befriend(session, ada, bob, "bob")
    return {name: token_for(session, name) for name in ("ada", "bob", "eve")}


def post_file(client: TestClient, token: str, data: bytes, name: str):  # type: ignore[no-untyped-def]
    return client.post("/api/uploads", params={"name": name}, content=data, headers=bearer(token))


def send_file(client, session, token: str, data: bytes, name: str, **timer) -> dict:  # type: ignore[no-untyped-def]
    """Upload as ada and send it to bob through the service; the upload's JSON."""
    response = post_file(client, token, data, name)
    assert response.status_code == 201, response.text
    body = response.json()
    identity = auth.authenticate(session, token)
    sending.check_send_message(
        session,
        actor_id=identity.user_id,
        username="bob",
        body="",
        attachment_ids=[body["id"]],
        **timer,
    )
    return body


def test_upload_answers_with_the_detected_type_and_urls(client, people):
    response = post_file(client, people["ada"], media_samples.jpeg_with_gps(), "trip.jpg")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "trip.jpg"
    assert (body["type"], body["kind"]) == ("image/jpeg", "image")
    assert body["url"] == f"/api/attachments/{body['id']}"
    assert body["thumbnail_url"] == f"/api/attachments/{body['id']}/thumbnail"


def test_the_browser_uploads_and_downloads_with_its_session_cookie(client, session, people):
    client.cookies.set(SESSION_COOKIE, people["ada"])
    response = client.post(
        "/api/uploads",
        params={"name": "n.txt"},
        content=b"notes",
        headers={"Origin": get_settings().origins()[0]},
    )
    assert response.status_code == 201
    sent = send_file(client, session, people["ada"], b"more", "m.txt")
    assert client.get(sent["url"]).content == b"more"
    client.cookies.clear()


def test_uploading_needs_a_valid_token(client, people):
    assert client.post("/api/uploads", params={"name": "a"}, content=b"x").status_code == 401
    bad = client.post(
        "/api/uploads", params={"name": "a"}, content=b"x", headers=bearer("forged.token.here")
    )
    assert bad.status_code == 401
    assert bad.json()["detail"]


def test_a_declared_size_over_the_limit_is_refused_before_reading(
    client, people, monkeypatch, uploads
):
    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)
    response = post_file(client, people["ada"], b"x" * (1024 * 1024 + 1), "big.bin")
    assert response.status_code == 413
    assert response.json() == {"detail": "A file can be at most 1 MB."}
    assert not any(p.is_file() for p in uploads.rglob("*"))


def test_a_streamed_body_over_the_limit_is_cut_off_and_leaves_nothing(
    client, session, people, monkeypatch, uploads
):
    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)

    def body() -> Iterator[bytes]:  # chunked: no Content-Length to refuse early
        for _ in range(3):
            yield b"y" * 512 * 1024

    response = client.post(
        "/api/uploads", params={"name": "big.bin"}, content=body(), headers=bearer(people["ada"])
    )
    assert response.status_code == 413
    assert not any(p.is_file() for p in uploads.rglob("*"))
    assert session.exec(select(Attachment)).all() == []


def test_quota_refusal_says_which_limit(client, people, monkeypatch):
    monkeypatch.setattr(get_settings(), "user_quota_mb", 1)
    assert post_file(client, people["ada"], b"a" * 700_000, "1.bin").status_code == 201
    refused = post_file(client, people["ada"], b"b" * 700_000, "2.bin")
    assert refused.status_code == 413
    assert "quota" in refused.json()["detail"]


def test_cancelling_an_upload_deletes_it(client, session, people, uploads):
    upload = post_file(client, people["ada"], b"draft", "d.txt").json()
    # Someone else cannot cancel it (and learns nothing: 204 either way).
    assert (
        client.delete(f"/api/uploads/{upload['id']}", headers=bearer(people["bob"])).status_code
        == 204
    )
    assert session.get(Attachment, upload["id"]) is not None
    assert (
        client.delete(f"/api/uploads/{upload['id']}", headers=bearer(people["ada"])).status_code
        == 204
    )
    session.expire_all()
    assert session.get(Attachment, upload["id"]) is None
    assert not any(p.is_file() for p in uploads.rglob("*"))


def test_both_participants_download_the_same_bytes(client, session, people):
    sent = send_file(client, session, people["ada"], media_samples.wav(), "tone.wav")
    for who in ("ada", "bob"):
        response = client.get(sent["url"], headers=bearer(people[who]))
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        assert response.content == media_samples.wav()


@pytest.mark.parametrize("case", ["stranger", "signed out", "bad token", "guessed id", "pending"])
def test_refusals_are_all_not_found(client, session, people, case):
    sent = send_file(client, session, people["ada"], media_samples.png(), "p.png")
    url, headers = sent["url"], bearer(people["bob"])
    if case == "stranger":
        headers = bearer(people["eve"])
    elif case == "signed out":
        headers = {}
    elif case == "bad token":
        headers = bearer("not-a-token")
    elif case == "guessed id":
        url = f"/api/attachments/{sent['id'] + 17}"
    else:
        draft = post_file(client, people["ada"], b"draft", "d.txt").json()
        url, headers = draft["url"], bearer(people["ada"])
    for target in (url, url + "/thumbnail"):
        response = client.get(target, headers=headers)
        assert response.status_code == 404, (case, target)
        assert response.json() == {"detail": "No such file."}


def test_an_expired_message_is_not_found_and_a_deleted_one_too(
    frozen_clock, client, session, people
):
    timed = send_file(
        client, session, people["ada"], media_samples.png(), "p.png", timer_seconds=30
    )
    assert client.get(timed["url"], headers=bearer(people["bob"])).status_code == 200
    frozen_clock.advance(seconds=30)
    assert client.get(timed["url"], headers=bearer(people["bob"])).status_code == 404
    assert client.get(timed["thumbnail_url"], headers=bearer(people["bob"])).status_code == 404

    kept = send_file(client, session, people["ada"], b"doc", "d.txt")
    message_id = session.exec(select(Message.id).order_by(Message.id.desc())).first()
    conversations.delete_for_everyone(
        session, actor_id=auth.authenticate(session, people["ada"]).user_id, message_id=message_id
    )
    assert client.get(kept["url"], headers=bearer(people["ada"])).status_code == 404


@pytest.mark.parametrize(
    ("data", "name", "mime"),
    [
        (media_samples.HTML, "page.html", "text/html"),
        (media_samples.SVG, "logo.svg", "image/svg+xml"),
        (b'{"a": 1}', "data.json", "text/plain"),
    ],
)
def test_anything_a_browser_could_run_is_a_download_with_nosniff(
    client, session, people, data, name, mime
):
    sent = send_file(client, session, people["ada"], data, name)
    response = client.get(sent["url"], headers=bearer(people["bob"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(mime)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert name in response.headers["content-disposition"]
    assert "sandbox" in response.headers["content-security-policy"]
    assert "no-store" in response.headers["cache-control"]


def test_media_is_inline_and_images_are_served_clean(client, session, people):
    sent = send_file(client, session, people["ada"], media_samples.jpeg_with_gps(), "p.jpg")
    response = client.get(sent["url"], headers=bearer(people["bob"]))
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert b"Secret Camera" not in response.content
    thumb = client.get(sent["thumbnail_url"], headers=bearer(people["bob"]))
    assert thumb.headers["content-type"] == "image/webp"
    assert thumb.content[8:12] == b"WEBP"


def test_range_requests_serve_the_asked_bytes(client, session, people):
    clip = media_samples.webm()
    sent = send_file(client, session, people["ada"], clip, "clip.webm")
    headers = bearer(people["bob"])
    full = client.get(sent["url"], headers=headers)
    assert full.headers["accept-ranges"] == "bytes"
    part = client.get(sent["url"], headers={**headers, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(clip)}"
    assert part.content == clip[100:200]
    tail = client.get(sent["url"], headers={**headers, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == clip[-10:]
    beyond = client.get(sent["url"], headers={**headers, "Range": f"bytes={len(clip) + 5}-"})
    assert beyond.status_code == 416
    # A stranger's Range request is refused like any other.
    eve = client.get(sent["url"], headers={**bearer(people["eve"]), "Range": "bytes=0-9"})
    assert eve.status_code == 404


# --- profile pictures --------------------------------------------------------------------


def stored(uploads: Path) -> list[Path]:
    return [p for p in uploads.rglob("*") if p.is_file() and ".incoming" not in p.parts]


def test_a_profile_picture_is_square_clean_and_only_for_friends(client, session, people, uploads):
    put = client.put(
        "/api/me/avatar",
        content=media_samples.jpeg_with_gps(900, 500),
        headers=bearer(people["ada"]),
    )
    assert put.status_code == 200, put.text
    url = put.json()["url"]
    assert url.startswith("/api/users/ada/avatar?v=")
    for who in ("ada", "bob"):
        response = client.get(url, headers=bearer(people[who]))
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
        picture = Image.open(BytesIO(response.content))
        assert picture.size == (256, 256)
        assert dict(picture.getexif()) == {}
    for headers in (bearer(people["eve"]), {}):
        assert client.get(url, headers=headers).status_code == 404
    # Bob without a picture: 404 even to his friend.
    assert client.get("/api/users/bob/avatar", headers=bearer(people["ada"])).status_code == 404
    assert len(stored(uploads)) == 1


def test_replacing_and_removing_a_picture_deletes_the_old_files(client, people, uploads):
    headers = bearer(people["ada"])
    client.put("/api/me/avatar", content=media_samples.png(), headers=headers)
    first = stored(uploads)
    client.put("/api/me/avatar", content=media_samples.jpeg_with_gps(), headers=headers)
    second = stored(uploads)
    assert len(second) == 1 and second != first
    assert client.delete("/api/me/avatar", headers=headers).status_code == 204
    assert stored(uploads) == []
    assert client.get("/api/users/ada/avatar", headers=headers).status_code == 404


def test_a_picture_that_is_not_an_image_is_refused_and_leaves_nothing(client, people, uploads):
    for body in (media_samples.SVG, b"plain text", media_samples.png()[:30]):
        response = client.put("/api/me/avatar", content=body, headers=bearer(people["ada"]))
        assert response.status_code == 422
        assert response.json()["detail"]
    assert stored(uploads) == []


def test_after_unfriending_the_picture_is_not_found(client, session, people):
    headers = bearer(people["ada"])
    url = client.put("/api/me/avatar", content=media_samples.png(), headers=headers).json()["url"]
    assert client.get(url, headers=bearer(people["bob"])).status_code == 200
    friends.remove_friend(
        session, actor_id=auth.authenticate(session, people["bob"]).user_id, username="ada"
    )
    assert client.get(url, headers=bearer(people["bob"])).status_code == 404


# --- request size caps -------------------------------------------------------------------


def test_a_json_body_over_64_kb_is_refused_before_it_is_read(client, people):
    huge = {"username": "x" * 70_000, "password": "y"}
    response = client.post("/api/auth/login", json=huge)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_a_chunked_json_body_over_the_cap_is_cut_off(client, people):
    def body() -> Iterator[bytes]:
        yield b'{"body": "'
        for _ in range(20):
            yield b"z" * 8192
        yield b'"}'

    response = client.post(
        "/api/conversations/bob/messages",
        content=body(),
        headers={**bearer(people["ada"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_a_multipart_send_over_the_cap_is_refused_and_stores_nothing(
    client, session, people, monkeypatch, uploads
):
    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)
    monkeypatch.setattr(get_settings(), "max_files_per_message", 2)
    files = [
        ("files", (f"{i}.bin", b"q" * (1024 * 1024), "application/octet-stream")) for i in range(4)
    ]
    response = client.post(
        "/api/conversations/bob/messages",
        data={"body": "four big files"},
        files=files,
        headers=bearer(people["ada"]),
    )
    assert response.status_code == 413
    assert session.exec(select(Message)).all() == []
    assert stored(uploads) == []


def test_a_cookie_write_from_another_origin_is_refused(client, session, people, uploads):
    client.cookies.set(SESSION_COOKIE, people["ada"])
    for origin in ("http://evil.example", "http://localhost:3001", "null", "http://testserver"):
        response = client.post(
            "/api/uploads", params={"name": "n.txt"}, content=b"x", headers={"Origin": origin}
        )
        assert response.status_code == 403, origin
        assert response.json() == {"detail": "Cross-site request refused."}
    assert session.exec(select(Attachment)).all() == []
    assert stored(uploads) == []
    # A browser always sends Origin on a POST: a cookie write without one is refused too.
    missing = client.post("/api/uploads", params={"name": "n.txt"}, content=b"x")
    assert missing.status_code == 403
    assert session.exec(select(Attachment)).all() == []
    same = client.post(
        "/api/uploads",
        params={"name": "n.txt"},
        content=b"x",
        headers={"Origin": get_settings().origins()[0]},
    )
    assert same.status_code == 201
    # A bearer client is not a browser victim: its Origin does not matter.
    client.cookies.clear()
    other = client.post(
        "/api/uploads",
        params={"name": "n.txt"},
        content=b"x",
        headers={**bearer(people["ada"]), "Origin": "http://evil.example"},
    )
    assert other.status_code == 201


def test_files_served_on_our_own_origin_are_same_origin_resources(client, session, people):
    """Cross-Origin-Resource-Policy: a page on another port of the same host (same site, so
    SameSite=Strict still sends the cookie) cannot embed a file, a thumbnail or a picture."""
    sent = send_file(client, session, people["ada"], media_samples.jpeg_with_gps(), "p.jpg")
    own = get_settings().origins()[0]  # http://localhost:3000: the host ./iris run serves
    for url in (sent["url"], sent["thumbnail_url"]):
        response = client.get(own + url, headers=bearer(people["bob"]))
        assert response.status_code == 200
        assert response.headers["cross-origin-resource-policy"] == "same-origin"
    # A backend on an origin no page of ours has (./iris dev's :8000): our pages live on
    # another port of the same site, which same-origin would hide every picture from.
    split = client.get(sent["url"], headers=bearer(people["bob"]))
    assert split.headers["cross-origin-resource-policy"] == "same-site"
