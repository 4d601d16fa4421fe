"""Helpers for tests that store real files: upload bytes the way the endpoint does, look at
what is on disk."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from sqlmodel import Session

from iris_reflex.models import Attachment
from iris_reflex.services import storage, uploads
from iris_reflex.services.attachments import AttachmentView


def upload(session: Session, actor_id: int, data: bytes, name: str) -> AttachmentView:
    """Receive bytes the way the endpoint does (an incoming file), then store them."""
    path = storage.incoming_path()
    path.write_bytes(data)
    return uploads.store_upload(session, actor_id=actor_id, source=path, name=name)


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
