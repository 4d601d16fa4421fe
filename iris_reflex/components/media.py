"""Media in the UI: attachments inside bubbles, and the composer's upload tray.

Why the tray is plain JavaScript: each file goes to ``POST /api/uploads`` in its own
``XMLHttpRequest`` (the only browser API that reports upload progress), authenticated by the
HttpOnly session cookie. Reflex's own upload component would put files in its public
``/_upload`` folder, which must never hold private media. The tray writes the ids of finished
uploads into a hidden form field, so the ordinary form submit sends them with the text; the
server then checks that each id is the sender's own pending upload.
"""

from __future__ import annotations

import json

import reflex as rx

from iris_reflex.settings import get_settings
from iris_reflex.state.rows import AttachmentRow
from iris_reflex.state.session import backend_base_js


def backend_url(path: rx.Var[str]) -> rx.Var[str]:
    """An absolute URL on the backend for a path like ``/api/attachments/7``.

    The exported frontend may be served from another origin than the backend, so relative
    URLs would miss; this resolves the backend's address the way the page's scripts do.
    """
    return rx.Var(_js_expr=f"({backend_base_js()} + {path!s})", _var_type=str)


def uploads_script() -> str:
    """The tray (button, drag and drop, paste; a progress bar and a cancel button per file) lives
    in ``assets/js/uploads.js``. This inline script gives it what is known only here (the size
    limits from the settings, the backend's address) and loads it once per page."""
    settings = get_settings()
    limits = json.dumps(
        {
            "maxFiles": settings.max_files_per_message,
            "maxBytes": settings.max_upload_mb * 1024 * 1024,
            "maxMb": settings.max_upload_mb,
        }
    )
    src = json.dumps(str(rx.asset("js/uploads.js")))
    return (
        "(() => {\n"
        f"  window.irisUploadsConfig = {{limits: {limits}, base: () => {backend_base_js()}}};\n"
        "  if (window.irisUploads || document.getElementById('iris-uploads-js')) return;\n"
        "  const script = document.createElement('script');\n"
        "  script.id = 'iris-uploads-js';\n"
        f"  script.src = {src};\n"
        "  document.head.append(script);\n"
        "})();\n"
    )


MEDIA_STYLE = """
.attachments { display: flex; flex-direction: column; gap: 0.4em; margin-bottom: 0.25em; }
.attachment-image { display: block; max-width: min(280px, 100%); height: auto;
  border-radius: 10px; background: var(--gray-a3); }
.attachment-link { display: block; border-radius: 10px; }
.attachment-link:focus-visible { outline: 2px solid var(--accent-8); outline-offset: 2px; }
.attachment-video { display: block; width: 320px; max-width: 100%; border-radius: 10px;
  background: black; }
.attachment-audio { display: block; width: 300px; max-width: 100%; }
.attachment-file { display: flex; align-items: center; gap: 0.6em; padding: 0.5em 0.6em;
  border-radius: 10px; background: var(--gray-a3); color: var(--gray-12);
  width: 300px; max-width: 100%; box-sizing: border-box; }
.attachment-file a { color: inherit; }
.message-mine .attachment-file { background: rgba(0, 0, 0, 0.14);
  color: var(--accent-contrast); }
#upload-tray { display: flex; flex-wrap: wrap; gap: 0.5em; width: 100%; }
#upload-tray:empty { display: none; }
.tray-item { display: flex; align-items: center; gap: 0.5em; padding: 0.35em 0.5em;
  border-radius: 10px; background: var(--gray-a3); border: 1px solid var(--gray-a5);
  max-width: 260px; }
.tray-error { color: var(--red-11); font-size: var(--font-size-1); }
.tray-item.tray-error { border-color: var(--red-8); }
.tray-thumb { width: 40px; height: 40px; object-fit: cover; border-radius: 6px; }
.tray-icon { font-size: 24px; width: 40px; text-align: center; }
.tray-text { display: flex; flex-direction: column; min-width: 0; flex: 1; gap: 2px; }
.tray-name { font-size: var(--font-size-1); overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; max-width: 150px; color: var(--gray-12); }
.tray-size { font-size: var(--font-size-1); color: var(--gray-11); }
.tray-progress { width: 120px; height: 6px; accent-color: var(--accent-9); }
.tray-cancel { all: unset; cursor: pointer; width: 24px; height: 24px; text-align: center;
  border-radius: 50%; color: var(--gray-11); font-size: 18px; line-height: 24px; }
.tray-cancel:hover { background: var(--gray-a4); }
.tray-cancel:focus-visible { outline: 2px solid var(--accent-8); }
.tray-wait { animation: tray-wait 0.6s; }
@keyframes tray-wait { 0%, 100% { transform: none; } 25% { transform: translateX(-4px); }
  75% { transform: translateX(4px); } }
#conversation-pane.drop-target { outline: 3px dashed var(--accent-8); outline-offset: -6px; }
"""


def _file_card(attachment: AttachmentRow) -> rx.Component:
    return rx.el.div(
        rx.icon("file", size=22, aria_hidden="true"),
        rx.vstack(
            rx.text(
                attachment.name,
                size="2",
                weight="medium",
                class_name="iris-ellipsis",
                max_width="190px",
            ),
            rx.text(attachment.size, size="1"),
            spacing="0",
            min_width="0",
            flex="1",
        ),
        rx.el.a(
            rx.icon("download", size=18),
            href=backend_url(attachment.url),
            download=attachment.name,
            # rx.el.a is React Router's Link: without this, a click is routed in-page.
            reload_document=True,
            aria_label="Download " + attachment.name,
            title="Download",
            class_name="attachment-download",
        ),
        class_name="attachment-file",
        data_kind="file",
    )


def attachment_view(attachment: AttachmentRow) -> rx.Component:
    """One attachment inside a bubble: thumbnail (opens full size), player, or file card."""
    return rx.match(
        attachment.kind,
        (
            "image",
            rx.el.a(
                rx.el.img(
                    src=backend_url(attachment.thumb_url),
                    alt=attachment.name,
                    loading="lazy",
                    class_name="attachment-image",
                    style={"aspectRatio": attachment.aspect},
                ),
                href=backend_url(attachment.url),
                target="_blank",
                rel="noopener noreferrer",
                reload_document=True,
                aria_label="Open " + attachment.name + " full size",
                class_name="attachment-link",
                data_kind="image",
            ),
        ),
        (
            "video",
            rx.el.video(
                src=backend_url(attachment.url),
                controls=True,
                preload="metadata",
                aria_label="Video " + attachment.name,
                class_name="attachment-video",
                data_kind="video",
            ),
        ),
        (
            "audio",
            rx.el.audio(
                src=backend_url(attachment.url),
                controls=True,
                preload="metadata",
                aria_label="Audio " + attachment.name,
                class_name="attachment-audio",
                data_kind="audio",
            ),
        ),
        _file_card(attachment),
    )


def upload_controls() -> tuple[rx.Component, rx.Component, rx.Component, rx.Component]:
    """(the hidden file input, which must sit outside the form so it is not submitted; the
    attach button; the tray; the hidden ids field)."""
    file_input = rx.el.input(
        type="file",
        id="file-picker",
        multiple=True,
        hidden=True,
        tab_index=-1,
        aria_label="Choose files to attach",
    )
    picker = rx.fragment(
        rx.icon_button(
            rx.icon("paperclip", size=18),
            type="button",
            size="3",
            variant="soft",
            color_scheme="gray",
            aria_label="Attach files",
            title="Attach files (or drop or paste them)",
            on_click=rx.call_script("document.getElementById('file-picker').click()"),
        ),
    )
    tray = rx.el.div(id="upload-tray", aria_live="polite")
    ids = rx.el.input(type="hidden", id="attachment-ids", name="attachment_ids")
    return file_input, picker, tray, ids
