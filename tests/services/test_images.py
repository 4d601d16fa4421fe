"""Pictures rebuilt from their pixels: no metadata, upright, frames kept, decode budgets."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from iris_reflex.errors import Throttled
from iris_reflex.models import Attachment
from iris_reflex.services import images, storage
from iris_reflex.settings import PROJECT_ROOT, get_settings
from tests import media_samples
from tests.services.builders import friends_ada_and_bob
from tests.services.files import exif_of, row, stored_files, upload

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


# --- the decode budget and the decoding slots -----------------------------------------------

# Runs one decode in a fresh interpreter and prints whether it was refused and by how much it
# raised the process's peak memory (ru_maxrss, KB on Linux): the test process's own peak,
# from whatever ran before, would hide the figure.
_MEASURE = """
import resource, sys
from pathlib import Path
from iris_reflex.services import images
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = images.clean_image(Path(sys.argv[1]), "image/png")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(result is None, (after - before) // 1024)
"""


def test_a_small_png_declaring_huge_dimensions_is_not_decoded(tmp_path):
    """168 KB declaring 7,700 x 7,700 once raised the worker's peak by about 630 MB."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(media_samples.png_declaring(7700, 7700))
    assert bomb.stat().st_size < 300_000

    env = {**os.environ, "IRIS_UPLOAD_DIR": str(tmp_path / "uploads")}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(bomb)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    refused, peak_mb = done.stdout.split()
    assert refused == "True"
    assert int(peak_mb) < 32, f"decoding raised peak memory by {peak_mb} MB"


def test_the_bomb_upload_is_kept_as_a_plain_file_without_a_preview(session):
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, media_samples.png_declaring(7700, 7700), "bomb.png")
    assert (view.mime_type, view.kind, view.has_thumbnail) == ("image/png", "file", False)


def test_a_png_just_within_the_budget_is_still_previewed(session, monkeypatch):
    monkeypatch.setattr(get_settings(), "image_memory_mb", 16)
    side = math.isqrt(images.pixel_budget())
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, media_samples.png_declaring(side, side), "edge.png")
    assert (view.kind, view.width, view.height, view.has_thumbnail) == ("image", side, side, True)
    over = upload(session, ada, media_samples.png_declaring(side + 1, side + 1), "over.png")
    assert (over.kind, over.has_thumbnail) == ("file", False)


def test_a_phone_photo_is_stored_at_full_size(session):
    ada, _ = friends_ada_and_bob(session)
    view = upload(session, ada, media_samples.photo_jpeg(4032, 3024), "IMG_2001.jpg")
    assert (view.kind, view.width, view.height, view.has_thumbnail) == (
        "image",
        4032,
        3024,
        True,
    )


def test_a_jpeg_over_the_budget_is_reduced_while_it_is_decoded(session, monkeypatch):
    monkeypatch.setattr(get_settings(), "image_memory_mb", 16)  # about 1.4 million pixels
    ada, _ = friends_ada_and_bob(session)

    view = upload(session, ada, media_samples.photo_jpeg(2000, 1400), "big.jpg")

    # Halved in each direction: 700,000 pixels, where the full 2.8 million would not fit.
    assert (view.kind, view.width, view.height, view.has_thumbnail) == ("image", 1000, 700, True)
    with Image.open(storage.path_for(row(session, view.id).storage_key)) as stored:
        assert stored.size == (1000, 700)
        assert stored.size[0] * stored.size[1] <= images.pixel_budget()


def test_a_worker_decodes_only_so_many_pictures_at_once(session, monkeypatch, uploads):
    monkeypatch.setattr(get_settings(), "image_workers", 1)
    monkeypatch.setattr(get_settings(), "image_wait_seconds", 0)
    ada, _ = friends_ada_and_bob(session)

    with images.image_slot():  # another upload is decoding on this worker
        with pytest.raises(Throttled) as busy:
            upload(session, ada, media_samples.png(), "wait.png")
        with pytest.raises(Throttled):
            images.square_picture(_written(media_samples.png()), 64)

    assert busy.value.message == images.BUSY
    assert [p for p in stored_files(uploads) if ".incoming" not in p.parts] == []
    assert session.exec(select(Attachment)).all() == []
    # Once the slot is free again, the same picture goes through.
    assert upload(session, ada, media_samples.png(), "wait.png").has_thumbnail


def _written(data: bytes) -> Path:
    path = storage.incoming_path()
    path.write_bytes(data)
    return path
