"""What a file is, from its content; what may be shown in place; names as shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from iris_reflex.services import media_types
from tests import media_samples


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (media_samples.png(), "image/png"),
        (media_samples.HTML, "text/html"),
        (media_samples.SVG, "image/svg+xml"),
        (b'<?xml version="1.0"?><a/>', "application/xml"),
        (b"plain words\n", "text/plain"),
        (b"", "application/octet-stream"),
        (bytes(range(256)), "application/octet-stream"),
    ],
)
def test_sniff_reads_the_type_from_the_content(tmp_path: Path, data, mime):
    path = tmp_path / "upload.jpg"  # the name never decides
    path.write_bytes(data)
    assert media_types.sniff(path) == mime


def test_only_decoded_media_is_shown_in_place():
    assert media_types.is_inline("image/png") and media_types.is_inline("audio/ogg")
    for risky in ("text/html", "image/svg+xml", "application/xml", "text/plain"):
        assert not media_types.is_inline(risky)


def test_an_image_without_a_thumbnail_is_shown_as_a_file():
    assert media_types.kind_of("image/png") == "image"
    assert media_types.kind_of("image/png", has_thumbnail=False) == "file"
    assert media_types.kind_of("video/mp4") == "video"
    assert media_types.kind_of("application/pdf") == "file"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("../../etc/pass\x00wd", "passwd"), ("C:\\Users\\a.txt", "a.txt"), ("\x01\x02", "file")],
)
def test_display_name_keeps_the_last_part_without_control_characters(name, shown):
    assert media_types.display_name(name) == shown


def test_a_long_name_keeps_its_extension():
    shown = media_types.display_name("x" * 400 + ".pdf")
    assert len(shown) == media_types.NAME_MAX and shown.endswith(".pdf")
