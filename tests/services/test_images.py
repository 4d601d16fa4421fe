"""Pictures rebuilt from their pixels: no metadata, upright, frames kept, decode budgets."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from iris_reflex.services import images, storage
from tests import media_samples
from tests.services.builders import friends_ada_and_bob
from tests.services.files import exif_of, row, upload

pytestmark = pytest.mark.usefixtures("cheap_hash", "uploads")


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
        assert max(thumb.size) <= max(images.THUMBNAIL_SIZE)
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
    monkeypatch.setattr(images, "MAX_ANIMATION_PIXELS", 3 * 60 * 40 - 1)
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, media_samples.animated_gif(3), "huge.gif")
    assert (view.mime_type, view.kind, view.has_thumbnail) == ("image/gif", "file", False)
