"""A message's files as its participants see them, and their one-line sidebar preview."""

from __future__ import annotations

import pytest

from iris_reflex.services import attachments, conversations
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.media_types import kind_of
from tests import media_samples
from tests.services.builders import friends_ada_and_bob, send
from tests.services.files import upload

pytestmark = pytest.mark.usefixtures("cheap_hash", "uploads")


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
    assert attachments.describe(sidebar[0].last_message.attachments) == "📎 2 files"


def _view(kind_mime: str, name: str = "f") -> AttachmentView:
    return AttachmentView(
        id=1,
        message_id=1,
        name=name,
        mime_type=kind_mime,
        kind=kind_of(kind_mime),
        size_bytes=1,
        width=None,
        height=None,
        has_thumbnail=True,
    )


@pytest.mark.parametrize(
    ("mime", "preview"),
    [
        ("image/png", "📷 Photo"),
        ("video/mp4", "🎬 Video"),
        ("audio/ogg", "🎵 Audio"),
        ("application/pdf", "📎 report.pdf"),
    ],
)
def test_one_file_is_previewed_by_its_kind(mime, preview):
    assert attachments.describe([_view(mime, "report.pdf")]) == preview


def test_several_files_are_counted_and_none_say_nothing():
    assert attachments.describe([_view("image/png"), _view("text/plain")]) == "📎 2 files"
    assert attachments.describe([]) == ""
