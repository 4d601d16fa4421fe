"""Who may fetch a message's file: the rule that shows the message decides.

Why it is built this way: fetching goes through ``conversations.get_message``, so the same
rule that shows a message (participant, still friends, not deleted, not expired) decides
whether its files are served, and no second copy of that rule exists. This module sits above
``conversations`` for that reason. Every refusal is the same ``NotFound(NO_SUCH_FILE)``.
"""

from __future__ import annotations

from sqlmodel import Session

from iris_reflex.errors import NotFound
from iris_reflex.models import Attachment
from iris_reflex.services import conversations, images, storage
from iris_reflex.services.media_types import NO_SUCH_FILE, ServedFile, is_inline


def open_attachment(
    session: Session, *, actor_id: int, attachment_id: int, thumbnail: bool = False
) -> ServedFile:
    """The file (or thumbnail) of an attachment the actor may see; ``NotFound`` otherwise.

    May see: the actor is one of the two people of the message's conversation, still friends,
    and the message is neither deleted nor expired (``conversations.get_message``).
    """
    row = session.get(Attachment, attachment_id)
    if row is None or row.message_id is None:
        raise NotFound(NO_SUCH_FILE)
    try:
        conversations.get_message(session, actor_id=actor_id, message_id=row.message_id)
    except NotFound:
        raise NotFound(NO_SUCH_FILE) from None
    if thumbnail:
        if row.thumbnail_key is None:
            raise NotFound(NO_SUCH_FILE)
        key, mime_type = row.thumbnail_key, images.THUMBNAIL_TYPE
    else:
        key, mime_type = row.storage_key, row.mime_type
    path = storage.stored_file(key)
    if path is None:
        # Swept between the row check and now: the row goes at the same sweep.
        raise NotFound(NO_SUCH_FILE)
    return ServedFile(
        path=path, mime_type=mime_type, name=row.original_name, inline=is_inline(mime_type)
    )
