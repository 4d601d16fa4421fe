"""Profile pictures: a clean square, seen by the user and their friends, gone when removed."""

from __future__ import annotations

import pytest
from PIL import Image
from sqlmodel import Session

from iris_reflex.errors import Invalid, NotFound
from iris_reflex.models import User
from iris_reflex.services import avatars, blocks, storage, users
from tests import media_samples
from tests.services.builders import friends_ada_and_bob, register
from tests.services.files import exif_of, stored_files

pytestmark = pytest.mark.usefixtures("cheap_hash", "uploads")


def set_picture(session: Session, actor_id: int, data: bytes) -> str:
    path = storage.incoming_path()
    path.write_bytes(data)
    return avatars.set_avatar(session, actor_id=actor_id, source=path)


def test_a_picture_is_stored_square_without_metadata(session):
    ada, _ = friends_ada_and_bob(session)
    version = set_picture(session, ada, media_samples.jpeg_with_gps(800, 600))
    user = session.get(User, ada)
    assert user is not None and user.avatar_key
    assert version == users.avatar_version(user.avatar_key)
    path = storage.path_for(user.avatar_key)
    with Image.open(path) as image:
        assert (image.format, image.size) == ("WEBP", (256, 256))
    assert exif_of(path) == {}


def test_the_user_and_friends_may_open_it_and_nobody_else(session):
    ada, bob = friends_ada_and_bob(session)
    (eve,) = register(session, "eve")
    set_picture(session, ada, media_samples.png())
    for actor in (ada, bob):
        served = avatars.open_avatar(session, actor_id=actor, username="ada")
        assert (served.mime_type, served.inline) == ("image/webp", True)
    with pytest.raises(NotFound):
        avatars.open_avatar(session, actor_id=eve, username="ada")
    blocks.block(session, actor_id=ada, username="bob")
    with pytest.raises(NotFound):
        avatars.open_avatar(session, actor_id=bob, username="ada")


def test_a_new_picture_replaces_the_old_file_and_removing_deletes_it(session, uploads):
    ada, _ = friends_ada_and_bob(session)
    first = set_picture(session, ada, media_samples.png())
    second = set_picture(session, ada, media_samples.png(80, 80))
    assert first != second
    assert len(stored_files(uploads)) == 1
    avatars.remove_avatar(session, actor_id=ada)
    avatars.remove_avatar(session, actor_id=ada)  # idempotent
    assert stored_files(uploads) == []
    with pytest.raises(NotFound):
        avatars.open_avatar(session, actor_id=ada, username="ada")


def test_something_that_is_not_a_picture_is_refused_and_leaves_nothing(session, uploads):
    ada, _ = friends_ada_and_bob(session)
    for data in (media_samples.HTML, media_samples.png()[:40]):
        with pytest.raises(Invalid):
            set_picture(session, ada, data)
    assert stored_files(uploads) == []
