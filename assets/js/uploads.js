// The composer's upload tray: button, drag and drop, paste; a progress bar and a cancel button
// per file. Loaded on the home page by iris_reflex/components/media.py (uploads_script), which
// first sets window.irisUploadsConfig: the size limits and the backend's base URL.
(() => {
  if (window.irisUploads) return;
  const LIMITS = window.irisUploadsConfig.limits;
  const base = () => window.irisUploadsConfig.base();
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
    // The sent message's row comes with the server's answer: the list scrolls to it then
    // (the server sends no script for that, so a text message costs one emit, not two).
    const list = document.getElementById('message-list');
    scrollAfterSend = list ? {height: list.scrollHeight, until: Date.now() + 10000} : null;
  });
  let scrollAfterSend = null;
  function scrollToSent() {
    if (!scrollAfterSend) return;
    const list = document.getElementById('message-list');
    if (!list || Date.now() > scrollAfterSend.until) { scrollAfterSend = null; return; }
    if (list.scrollHeight === scrollAfterSend.height) return;
    scrollAfterSend = null;
    list.scrollTop = list.scrollHeight;
  }
  new MutationObserver(() => {
    // React may re-create the tray element (switching chats); keep it filled.
    const tray = document.getElementById('upload-tray');
    if (tray && tray.childElementCount !== items.length) render();
    scrollToSent();
  }).observe(document.body, {childList: true, subtree: true});
})();
