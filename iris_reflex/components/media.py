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
    """The tray: button, drag and drop, paste; a progress bar and a cancel button per file."""
    settings = get_settings()
    limits = json.dumps(
        {
            "maxFiles": settings.max_files_per_message,
            "maxBytes": settings.max_upload_mb * 1024 * 1024,
            "maxMb": settings.max_upload_mb,
        }
    )
    return (
        "(() => {\n"
        "  if (window.irisUploads) return;\n"
        f"  const LIMITS = {limits};\n"
        f"  const base = () => {backend_base_js()};\n" + _TRAY_JS + "})();\n"
    )


_TRAY_JS = r"""
  let items = [];
  let seq = 0;
  const el = (tag, props = {}, ...kids) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const kid of kids) node.append(kid);
    return node;
  };
  const sizeText = (n) => n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(0) + ' KB'
    : (n / 1048576).toFixed(1) + ' MB';
  const uploading = () => items.some((i) => i.status === 'uploading');
  function sync() {
    const field = document.getElementById('attachment-ids');
    if (field) field.value = items.filter((i) => i.status === 'done').map((i) => i.id).join(',');
    const form = document.getElementById('composer-form');
    if (form) form.dataset.uploading = uploading() ? 'true' : 'false';
  }
  function render() {
    sync();
    const tray = document.getElementById('upload-tray');
    if (!tray) return;
    tray.replaceChildren(...items.map((item) => {
      const preview = item.preview
        ? el('img', {src: item.preview, alt: '', className: 'tray-thumb'})
        : el('span', {className: 'tray-icon', textContent: '📄', ariaHidden: 'true'});
      const label = el('span', {className: 'tray-name', textContent: item.file.name,
        title: item.file.name});
      let state;
      if (item.status === 'uploading') {
        state = el('progress', {max: 100, value: Math.round(item.progress * 100),
          className: 'tray-progress'});
        state.setAttribute('aria-label', 'Uploading ' + item.file.name);
      } else if (item.status === 'error') {
        state = el('span', {className: 'tray-error', textContent: item.error, role: 'alert'});
      } else if (item.status === 'sending') {
        state = el('span', {className: 'tray-size', textContent: 'Sending…'});
      } else {
        state = el('span', {className: 'tray-size', textContent: sizeText(item.file.size)});
      }
      const cancel = el('button', {type: 'button', className: 'tray-cancel', textContent: '×',
        onclick: () => remove(item)});
      cancel.setAttribute('aria-label', 'Remove ' + item.file.name);
      const row = el('div', {className: 'tray-item tray-' + item.status}, preview,
        el('div', {className: 'tray-text'}, label, state), cancel);
      row.dataset.name = item.file.name;
      return row;
    }));
  }
  function fail(item, message) { item.status = 'error'; item.error = message; render(); }
  function start(item) {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open('POST', base() + '/api/uploads?name=' + encodeURIComponent(item.file.name));
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) { item.progress = e.loaded / e.total; render(); }
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) { body = {}; }
      if (xhr.status === 201) { item.status = 'done'; item.id = body.id; render(); }
      else fail(item, typeof body.detail === 'string' ? body.detail : 'Upload failed.');
    };
    xhr.onerror = () => fail(item, 'Upload failed: check your connection.');
    xhr.send(item.file);
  }
  function add(fileList) {
    for (const file of Array.from(fileList || [])) {
      const item = {key: ++seq, file, status: 'uploading', progress: 0, id: null, error: ''};
      if (file.type.startsWith('image/')) item.preview = URL.createObjectURL(file);
      items.push(item);
      const live = items.filter((i) => i.status !== 'error').length;
      if (live > LIMITS.maxFiles) {
        fail(item, 'At most ' + LIMITS.maxFiles + ' files per message.');
      } else if (file.size > LIMITS.maxBytes) {
        fail(item, 'Too large: at most ' + LIMITS.maxMb + ' MB.');
      }
      else if (file.size === 0) fail(item, 'That file is empty.');
      else start(item);
    }
    render();
  }
  function remove(item) {
    if (item.status === 'uploading' && item.xhr) item.xhr.abort();
    if (item.status === 'done' && item.id != null) {
      fetch(base() + '/api/uploads/' + item.id, {method: 'DELETE', credentials: 'include'});
    }
    if (item.preview) URL.revokeObjectURL(item.preview);
    items = items.filter((i) => i !== item);
    render();
  }
  const sending = () => items.filter((i) => i.status === 'sending');
  window.irisUploads = {
    add,
    // The send succeeded: those files now belong to the message (files added since stay).
    clear() {
      sending().forEach((i) => i.preview && URL.revokeObjectURL(i.preview));
      items = items.filter((i) => i.status !== 'sending');
      render();
    },
    // The send was refused: offer the files again.
    restore() { sending().forEach((i) => { i.status = 'done'; }); render(); },
    // Leaving the conversation: cancel and delete everything not sent.
    reset() { [...items].forEach(remove); },
    count() { return items.length; },
  };
  document.addEventListener('change', (e) => {
    if (e.target && e.target.id === 'file-picker') { add(e.target.files); e.target.value = ''; }
  });
  document.addEventListener('paste', (e) => {
    if (!e.target.closest || !e.target.closest('#composer-form')) return;
    const files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) { e.preventDefault(); add(files); }
  });
  const pane = (e) => e.target.closest && e.target.closest('#conversation-pane');
  document.addEventListener('dragover', (e) => {
    if (!pane(e) || !e.dataTransfer || ![...e.dataTransfer.types].includes('Files')) return;
    e.preventDefault();
    pane(e).classList.add('drop-target');
  });
  document.addEventListener('dragleave', (e) => {
    if (pane(e) && !pane(e).contains(e.relatedTarget)) pane(e).classList.remove('drop-target');
  });
  document.addEventListener('drop', (e) => {
    if (!pane(e)) return;
    e.preventDefault();
    pane(e).classList.remove('drop-target');
    add(e.dataTransfer.files);
  });
  // Sending while a file is still on its way would drop it: hold the submit back.
  document.addEventListener('submit', (e) => {
    if (e.target.id !== 'composer-form' || !uploading()) return;
    e.preventDefault();
    e.stopPropagation();
    const tray = document.getElementById('upload-tray');
    if (tray) {
      tray.classList.remove('tray-wait');
      void tray.offsetWidth;  // restart the shake animation
      tray.classList.add('tray-wait');
    }
  }, true);
  // The form's data has been read (React's handler runs first): the files are on their way
  // with this message, so the next message cannot carry them again.
  document.addEventListener('submit', (e) => {
    if (e.target.id !== 'composer-form') return;
    items.forEach((i) => { if (i.status === 'done') i.status = 'sending'; });
    render();
  });
  // React may re-create the tray element (switching chats); keep it filled.
  new MutationObserver(() => {
    const tray = document.getElementById('upload-tray');
    if (tray && tray.childElementCount !== items.length) render();
  }).observe(document.body, {childList: true, subtree: true});
"""

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
