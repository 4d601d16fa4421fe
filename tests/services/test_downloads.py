"""Who may fetch a message's file: the two people of a live message, nobody else."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from iris_reflex.errors import NotFound
from iris_reflex.models import Attachment
from iris_reflex.services import conversations, downloads, expiry, friends
from iris_reflex.services.attachments import AttachmentView
from tests import media_samples
from tests.services.builders import friends_ada_and_bob, register, send
from tests.services.files import row, stored_files, upload

pytestmark = pytest.mark.usefixtures("cheap_hash", "uploads")


def sent_photo(session: Session) -> tuple[int, int, int, AttachmentView]:
    ada, bob = friends_ada_and_bob(session)
    (eve,) = register(session, "eve")
    photo = upload(session, ada, media_samples.jpeg_with_gps(), "p.jpg")
    send(session, ada, "bob", "look", attachment_ids=[photo.id], timer_seconds=60)
    return ada, bob, eve, photo


def test_both_participants_may_fetch_the_file_and_its_thumbnail(session):
    ada, bob, _, photo = sent_photo(session)
    for actor in (ada, bob):
        served = downloads.open_attachment(session, actor_id=actor, attachment_id=photo.id)
        assert (served.mime_type, served.name, served.inline) == ("image/jpeg", "p.jpg", True)
        thumb = downloads.open_attachment(
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
            downloads.open_attachment(session, actor_id=actor, attachment_id=attachment_id)


def test_an_expired_message_serves_nothing_before_and_after_the_sweep(
    session, frozen_clock, uploads
):
    ada, bob, _, photo = sent_photo(session)
    frozen_clock.advance(seconds=59, microseconds=999_999)
    downloads.open_attachment(session, actor_id=bob, attachment_id=photo.id)
    frozen_clock.advance(microseconds=1)
    for thumbnail in (False, True):
        with pytest.raises(NotFound):
            downloads.open_attachment(
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
        downloads.open_attachment(session, actor_id=bob, attachment_id=photo.id)
    assert stored_files(uploads) == []


def test_after_unfriending_neither_side_can_fetch(session):
    ada, bob, _, photo = sent_photo(session)
    friends.remove_friend(session, actor_id=bob, username="ada")
    for actor in (ada, bob):
        with pytest.raises(NotFound):
            downloads.open_attachment(session, actor_id=actor, attachment_id=photo.id)


def test_a_file_without_a_thumbnail_has_none_to_serve(session):
    ada, bob = friends_ada_and_bob(session)
    doc = upload(session, ada, b"notes", "n.txt")
    send(session, ada, "bob", "doc", attachment_ids=[doc.id])
    with pytest.raises(NotFound):
        downloads.open_attachment(session, actor_id=bob, attachment_id=doc.id, thumbnail=True)
