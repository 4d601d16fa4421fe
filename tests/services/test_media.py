"""Media through the service: type detection, cleaned images, limits, attaching, access.

Every file is real and on disk (a temporary upload folder); the database is real (SQLite and
PostgreSQL). Refusals must leave nothing behind: no row and no file.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import Session, select

from iris_reflex.errors import Invalid, NotFound, TooLarge
from iris_reflex.models import Attachment, Message
from iris_reflex.services import conversations, expiry, friends, media, passwords, storage
from iris_reflex.settings import get_settings
from tests import media_samples
from tests.services.builders import friends_ada_and_bob, register, send


@pytest.fixture(autouse=True)
def cheap_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hash_password", lambda _password: "not-a-real-hash")


@pytest.fixture(autouse=True)
def uploads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    monkeypatch.setattr(get_settings(), "upload_dir", folder)
    return folder


def upload(session: Session, actor_id: int, data: bytes, name: str) -> media.AttachmentView:
    """Receive bytes the way the endpoint does (an incoming file), then store them."""
    path = storage.incoming_path()
    path.write_bytes(data)
    return media.store_upload(session, actor_id=actor_id, source=path, name=name)


def stored_files(folder: Path) -> list[Path]:
    """Every file under the upload folder, incoming ones included."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def row(session: Session, attachment_id: int) -> Attachment:
    found = session.get(Attachment, attachment_id)
    assert found is not None
    session.refresh(found)
    return found


def exif_of(path: Path) -> dict[int, object]:
    with Image.open(path) as image:
        return dict(image.getexif())


# --- detection and storing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "mime", "kind"),
    [
        (media_samples.png(), "a.png", "image/png", "image"),
        (media_samples.animated_gif(), "a.gif", "image/gif", "image"),
        (media_samples.wav(), "tone.wav", "audio/wav", "audio"),
        (media_samples.webm(), "clip.webm", "video/webm", "video"),
        (media_samples.mp4(), "clip.mp4", "video/mp4", "video"),
        (
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
            "doc.pdf",
            "application/pdf",
            "file",
        ),
        (b"just some notes\n", "notes.txt", "text/plain", "file"),
        (bytes(range(256)) * 4, "blob.bin", "application/octet-stream", "file"),
        (media_samples.HTML, "page.html", "text/html", "file"),
        (media_samples.SVG, "logo.svg", "image/svg+xml", "file"),
    ],
)
def test_the_type_comes_from_the_content(session, uploads, data, name, mime, kind):
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, data, name)
    assert (view.mime_type, view.kind, view.name) == (mime, kind, name)
    stored = row(session, view.id)
    assert storage.path_for(stored.storage_key).is_file()
    assert stored.message_id is None  # pending until a message claims it
    assert view.has_thumbnail is (kind == "image")


def test_a_name_or_a_claimed_extension_never_decides_the_type(session):
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, media_samples.HTML, "holiday.jpg")
    assert (view.mime_type, view.kind) == ("text/html", "file")
    assert not media.is_inline(view.mime_type)


def test_the_original_name_is_shown_but_never_used_on_disk(session, uploads):
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, b"hello", "../../etc/pass\x00wd")
    assert view.name == "passwd"
    stored = row(session, view.id)
    assert "passwd" not in stored.storage_key
    assert storage.path_for(stored.storage_key).resolve().is_relative_to(uploads.resolve())


def test_images_are_stored_without_metadata_and_upright(session):
    ada, _ = friends_ada_and_bob(session)
    original = media_samples.jpeg_with_gps(800, 600, rotate_tag=6)  # 6: rotate 90° to view
    assert media_samples.GPS_IFD in Image.open(io.BytesIO(original)).getexif()
    view = upload(session, ada, original, "IMG_0001.jpg")
    stored = row(session, view.id)
    assert (view.kind, view.width, view.height) == ("image", 600, 800)
    for key in (stored.storage_key, stored.thumbnail_key):
        assert key is not None
        path = storage.path_for(key)
        assert exif_of(path) == {}, f"metadata left in {key}"
        assert b"Secret Camera" not in path.read_bytes()
    with Image.open(storage.path_for(stored.thumbnail_key or "")) as thumb:
        assert thumb.format == "WEBP"
        assert max(thumb.size) <= max(media.THUMBNAIL_SIZE)
        assert thumb.size == (480, 640)


def test_an_animated_gif_keeps_its_frames(session):
    ada, _ = friends_ada_and_bob(session)
    stored = row(session, upload(session, ada, media_samples.animated_gif(3), "a.gif").id)
    with Image.open(storage.path_for(stored.storage_key)) as image:
        assert image.n_frames == 3


def test_a_broken_image_is_kept_as_a_plain_file(session):
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, media_samples.png()[:40], "cut.png")
    assert (view.mime_type, view.kind, view.has_thumbnail) == ("image/png", "file", False)


# --- limits ------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_and_leaves_nothing(session, uploads, monkeypatch):
    ada, _ = friends_ada_and_bob(session)
    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)
    with pytest.raises(TooLarge, match="at most 1 MB"):
        upload(session, ada, b"x" * (1024 * 1024 + 1), "big.bin")
    assert stored_files(uploads) == []
    assert session.exec(select(Attachment)).all() == []


def test_the_quota_counts_pending_uploads_and_refusal_leaves_nothing(session, uploads, monkeypatch):
    ada, bob = friends_ada_and_bob(session)
    monkeypatch.setattr(get_settings(), "user_quota_mb", 1)
    kept = upload(session, ada, b"a" * 600_000, "one.bin")
    before = stored_files(uploads)
    with pytest.raises(TooLarge, match="quota of 1 MB"):
        upload(session, ada, b"b" * 600_000, "two.bin")
    assert stored_files(uploads) == before
    assert [a.id for a in session.exec(select(Attachment)).all()] == [kept.id]
    # Someone else's quota is their own.
    upload(session, bob, b"c" * 600_000, "bob.bin")


def test_an_empty_file_is_refused(session, uploads):
    ada, _ = friends_ada_and_bob(session)
    with pytest.raises(Invalid, match="empty"):
        upload(session, ada, b"", "empty.txt")
    assert stored_files(uploads) == []


def test_too_many_files_for_one_message_are_refused_and_stay_pending(session, monkeypatch):
    ada, _ = friends_ada_and_bob(session)
    monkeypatch.setattr(get_settings(), "max_files_per_message", 2)
    ids = [upload(session, ada, b"%d" % i, f"{i}.txt").id for i in range(3)]
    with pytest.raises(Invalid, match="at most 2 files"):
        send(session, ada, "bob", "three", attachment_ids=ids)
    assert session.exec(select(Message)).all() == []
    assert all(row(session, i).message_id is None for i in ids)


# --- sending with files ------------------------------------------------------------------


def test_a_message_carries_its_files_and_may_have_no_text(session):
    ada, bob = friends_ada_and_bob(session)
    photo = upload(session, ada, media_samples.png(), "p.png")
    doc = upload(session, ada, b"notes", "n.txt")
    sent = send(session, ada, "bob", "  ", attachment_ids=[photo.id, doc.id])
    assert sent.body == ""
    assert [a.id for a in sent.attachments] == [photo.id, doc.id]
    page = conversations.list_messages(session, actor_id=bob, username="ada")
    assert [(a.name, a.kind) for a in page[0].attachments] == [
        ("p.png", "image"),
        ("n.txt", "file"),
    ]
    sidebar = conversations.list_conversations(session, actor_id=bob)
    assert media.describe(sidebar[0].last_message.attachments) == "📎 2 files"


def test_text_is_still_required_without_files(session):
    ada, _ = friends_ada_and_bob(session)
    with pytest.raises(Invalid, match="cannot be empty"):
        send(session, ada, "bob", "  ")


@pytest.mark.parametrize("whose", ["someone else's", "already sent", "made up", "discarded"])
def test_only_your_own_pending_uploads_can_be_attached(session, whose):
    ada, bob = friends_ada_and_bob(session)
    if whose == "someone else's":
        target = upload(session, bob, b"bob's", "b.txt").id
    elif whose == "already sent":
        target = upload(session, ada, b"once", "o.txt").id
        send(session, ada, "bob", "first", attachment_ids=[target])
    elif whose == "made up":
        target = 987654
    else:
        target = upload(session, ada, b"gone", "g.txt").id
        media.discard_uploads(session, actor_id=ada, attachment_ids=[target])
    messages_before = len(session.exec(select(Message)).all())
    with pytest.raises(Invalid, match="no longer available"):
        send(session, ada, "bob", "again", attachment_ids=[target])
    assert len(session.exec(select(Message)).all()) == messages_before


def test_discarding_deletes_the_file_and_only_your_own(session, uploads):
    ada, bob = friends_ada_and_bob(session)
    mine = upload(session, ada, media_samples.png(), "p.png")
    theirs = upload(session, bob, b"bob", "b.txt")
    media.discard_uploads(session, actor_id=ada, attachment_ids=[mine.id, theirs.id])
    assert session.get(Attachment, mine.id) is None
    assert session.get(Attachment, theirs.id) is not None
    assert len(stored_files(uploads)) == 1  # only bob's file is left


# --- who may fetch -----------------------------------------------------------------------


def sent_photo(session: Session) -> tuple[int, int, int, media.AttachmentView]:
    ada, bob = friends_ada_and_bob(session)
    (eve,) = register(session, "eve")
    photo = upload(session, ada, media_samples.jpeg_with_gps(), "p.jpg")
    send(session, ada, "bob", "look", attachment_ids=[photo.id], timer_seconds=60)
    return ada, bob, eve, photo


def test_both_participants_may_fetch_the_file_and_its_thumbnail(session):
    ada, bob, _, photo = sent_photo(session)
    for actor in (ada, bob):
        served = media.open_attachment(session, actor_id=actor, attachment_id=photo.id)
        assert (served.mime_type, served.name, served.inline) == ("image/jpeg", "p.jpg", True)
        thumb = media.open_attachment(
            session, actor_id=actor, attachment_id=photo.id, thumbnail=True
        )
        assert thumb.mime_type == "image/webp" and thumb.path.is_file()


def test_a_third_user_a_guessed_id_and_a_pending_upload_are_not_found(session):
    ada, bob, eve, photo = sent_photo(session)
    pending = upload(session, ada, b"draft", "d.txt")
    refusals = [
        (eve, photo.id),  # not in the conversation
        (ada, photo.id + 1000),  # guessed
        (ada, pending.id),  # not sent yet: nobody fetches it, not even its uploader
    ]
    for actor, attachment_id in refusals:
        with pytest.raises(NotFound, match="No such file"):
            media.open_attachment(session, actor_id=actor, attachment_id=attachment_id)


def test_an_expired_message_serves_nothing_before_and_after_the_sweep(
    session, frozen_clock, uploads
):
    ada, bob, _, photo = sent_photo(session)
    frozen_clock.advance(seconds=59, microseconds=999_999)
    media.open_attachment(session, actor_id=bob, attachment_id=photo.id)
    frozen_clock.advance(microseconds=1)
    for thumbnail in (False, True):
        with pytest.raises(NotFound):
            media.open_attachment(
                session, actor_id=bob, attachment_id=photo.id, thumbnail=thumbnail
            )
    expiry.sweep(session, now=frozen_clock())
    assert stored_files(uploads) == []
    assert session.exec(select(Attachment)).all() == []


def test_a_deleted_message_serves_nothing_and_its_files_are_gone(session, uploads):
    ada, bob, _, photo = sent_photo(session)
    message_id = row(session, photo.id).message_id
    assert message_id is not None
    conversations.delete_for_everyone(session, actor_id=ada, message_id=message_id)
    with pytest.raises(NotFound):
        media.open_attachment(session, actor_id=bob, attachment_id=photo.id)
    assert stored_files(uploads) == []


def test_after_unfriending_neither_side_can_fetch(session):
    ada, bob, _, photo = sent_photo(session)
    friends.remove_friend(session, actor_id=bob, username="ada")
    for actor in (ada, bob):
        with pytest.raises(NotFound):
            media.open_attachment(session, actor_id=actor, attachment_id=photo.id)


def test_a_file_without_a_thumbnail_has_none_to_serve(session):
    ada, bob = friends_ada_and_bob(session)
    doc = upload(session, ada, b"notes", "n.txt")
    send(session, ada, "bob", "doc", attachment_ids=[doc.id])
    with pytest.raises(NotFound):
        media.open_attachment(session, actor_id=bob, attachment_id=doc.id, thumbnail=True)


# --- clean-up ----------------------------------------------------------------------------


def test_abandoned_pending_uploads_are_deleted_after_a_day(session, frozen_clock, uploads):
    ada, bob = friends_ada_and_bob(session)
    upload(session, ada, media_samples.png(), "old.png")
    sent = upload(session, ada, b"sent", "s.txt")
    send(session, ada, "bob", "with file", attachment_ids=[sent.id])
    frozen_clock.advance(hours=23)
    young = upload(session, ada, b"young", "y.txt")
    frozen_clock.advance(hours=1, seconds=1)
    removed = media.delete_abandoned_uploads(
        session, older_than=frozen_clock() - media.PENDING_LIFETIME
    )
    assert removed == 1
    left = {a.id for a in session.exec(select(Attachment)).all()}
    assert left == {sent.id, young.id}
    assert len(stored_files(uploads)) == 2


def test_a_crashed_upload_leaves_no_partial_file_after_the_sweep(uploads):
    partial = storage.incoming_path()
    partial.write_bytes(b"half a file")
    assert storage.delete_stale_incoming(older_than=partial.stat().st_mtime) == 0
    assert storage.delete_stale_incoming(older_than=partial.stat().st_mtime + 1) == 1
    assert stored_files(uploads) == []


async def _chunks(*parts: bytes):  # type: ignore[no-untyped-def]
    for part in parts:
        yield part


def test_receiving_stops_at_the_limit_and_deletes_the_partial_file(uploads):
    with pytest.raises(TooLarge):
        asyncio.run(storage.receive(_chunks(b"a" * 600, b"b" * 600), limit=1000))
    assert stored_files(uploads) == []
    path, size = asyncio.run(storage.receive(_chunks(b"a" * 600, b"b" * 400), limit=1000))
    assert size == 1000 and path.read_bytes() == b"a" * 600 + b"b" * 400


def _with_comment(fmt: str, *, frames: int = 1) -> bytes:
    images = [Image.new("RGB", (60, 40), (i * 70, 90, 30)) for i in range(frames)]
    out = io.BytesIO()
    extra = {"save_all": True, "append_images": images[1:]} if frames > 1 else {}
    images[0].save(out, format=fmt, comment=b"secret comment: home is 12 Elm St", **extra)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (_with_comment("JPEG"), "c.jpg"),
        (_with_comment("GIF"), "c.gif"),
        (_with_comment("GIF", frames=3), "animated.gif"),
    ],
)
def test_comments_are_not_kept_either(session, data, name):
    assert b"secret comment" in data
    ada, _ = friends_ada_and_bob(session)
    stored = row(session, upload(session, ada, data, name).id)
    for key in (stored.storage_key, stored.thumbnail_key):
        assert b"secret comment" not in storage.path_for(key or "").read_bytes()


def test_an_animation_too_big_to_decode_is_kept_as_a_plain_file(session, monkeypatch):
    monkeypatch.setattr(media, "MAX_ANIMATION_PIXELS", 3 * 60 * 40 - 1)
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, media_samples.animated_gif(3), "huge.gif")
    assert (view.mime_type, view.kind, view.has_thumbnail) == ("image/gif", "file", False)
