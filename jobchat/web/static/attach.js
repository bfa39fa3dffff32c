// Files in a thread's composer: the paperclip (a file input), drag and drop onto the thread,
// and paste. Each file uploads at once (XHR, for its progress) to
// POST /api/v1/conversations/{id}/attachments and shows as a chip: a preview for an image,
// the name, the size, a progress bar, the server's error in words (with Retry), and a remove
// button. app.js's send reads composer.jobchatAttachments (ids(), busy(), clear()) and sends
// the ids with the message. Also: the thread's lightbox for images (a click on a thumbnail).
// Names and errors are set with textContent, never as markup.
"use strict";

(() => {
  const body = document.body;
  if (!body || !body.dataset.me) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const MAX_FILES = 10; // the contract: a message takes up to 10 attachments

  function humanSize(size) {
    if (size < 1024) return size === 1 ? "1 byte" : `${size} bytes`;
    let value = size / 1024;
    for (const unit of ["KB", "MB", "GB"]) {
      if (value < 1024 || unit === "GB") return `${value >= 10 ? value.toFixed(0) : value.toFixed(1)} ${unit}`;
      value /= 1024;
    }
    return `${size} bytes`;
  }

  // The server's error as a person reads it (its own message when it sends one we do not know).
  function uploadError(status, data) {
    const error = data && data.error;
    if (status === 415) return "This type of file can’t be sent. Try a PDF, Word, OpenDocument, RTF, text or image file.";
    if (status === 413) {
      const limit = error && /(\d{4,})\s*bytes/.exec(error.message || "");
      return limit ? `Too big to send: the limit is ${humanSize(Number(limit[1]))}.` : "Too big to send.";
    }
    if (status === 422 && error && /empty/i.test(error.message || "")) return "The file is empty.";
    if (status === 0) return "Upload failed: you seem to be offline.";
    if (error && error.message) return error.message;
    return `Upload failed (${status}).`;
  }

  const composers = new WeakMap();

  function setUp(composer) {
    if (composers.has(composer)) return composers.get(composer);
    const conversation = Number(composer.dataset.conversation);
    const tray = composer.querySelector("[data-attach-tray]");
    const chips = composer.querySelector("[data-attach-chips]");
    const input = composer.querySelector("[data-attach-input]");
    const status = composer.querySelector("[data-attach-status]");
    const textarea = composer.querySelector("textarea[name=body]");
    if (!tray || !chips || !input) return null;
    // With this script the files go through the API, not with the form.
    input.removeAttribute("name");
    const uploads = []; // {file, li, xhr, id, state: "uploading" | "done" | "failed", preview}

    function say(text) { if (status) status.textContent = text; }

    function refresh() {
      tray.hidden = uploads.length === 0;
      // A message may be files only: the text is required only when there are none.
      if (textarea) textarea.required = uploads.length === 0;
      composer.classList.toggle("has-uploads", uploads.length > 0);
    }

    function drawState(upload) {
      const { li } = upload;
      li.dataset.state = upload.state;
      const bar = li.querySelector("progress");
      const note = li.querySelector(".chip-note");
      const retry = li.querySelector(".chip-retry");
      bar.hidden = upload.state !== "uploading";
      retry.hidden = upload.state !== "failed";
      if (upload.state === "failed") {
        note.textContent = upload.error;
        li.setAttribute("aria-invalid", "true");
      } else {
        li.removeAttribute("aria-invalid");
        note.textContent = upload.state === "done" ? "Ready" : "Uploading…";
      }
    }

    function chip(upload) {
      const li = document.createElement("li");
      li.className = "attach-chip";
      const file = upload.file;
      const thumb = document.createElement("span");
      thumb.className = "chip-thumb";
      if (file.type.startsWith("image/") && file.type !== "image/heic" && file.type !== "image/heif") {
        upload.preview = URL.createObjectURL(file);
        const img = document.createElement("img");
        img.src = upload.preview;
        img.alt = "";
        img.width = 44;
        img.height = 44;
        thumb.append(img);
      } else {
        thumb.classList.add("chip-doc");
        const ext = (file.name.match(/\.([a-z0-9]{1,5})$/i) || [null, "file"])[1];
        thumb.textContent = ext.toUpperCase();
        thumb.setAttribute("aria-hidden", "true");
      }
      const text = document.createElement("span");
      text.className = "chip-text";
      const name = document.createElement("span");
      name.className = "chip-name";
      name.textContent = file.name;
      name.title = file.name;
      const info = document.createElement("span");
      info.className = "chip-info";
      const size = document.createElement("span");
      size.textContent = humanSize(file.size);
      const note = document.createElement("span");
      note.className = "chip-note";
      info.append(size, " · ", note);
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", `Uploading ${file.name}`);
      text.append(name, info, bar);
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "chip-retry link-button";
      retry.textContent = "Retry";
      retry.setAttribute("aria-label", `Retry ${file.name}`);
      retry.addEventListener("click", () => start(upload));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "chip-remove";
      remove.setAttribute("aria-label", `Remove ${file.name}`);
      remove.title = "Remove";
      remove.textContent = "×";
      remove.addEventListener("click", () => {
        drop(upload);
        (textarea || input).focus();
      });
      li.append(thumb, text, retry, remove);
      upload.li = li;
      return li;
    }

    function start(upload) {
      upload.state = "uploading";
      drawState(upload);
      const bar = upload.li.querySelector("progress");
      bar.value = 0;
      const form = new FormData();
      form.append("file", upload.file, upload.file.name);
      const xhr = new XMLHttpRequest();
      upload.xhr = xhr;
      xhr.open("POST", `/api/v1/conversations/${conversation}/attachments`);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("X-Requested-With", "fetch");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
      });
      const finished = (status, data) => {
        if (upload.xhr !== xhr) return; // removed, or retried since
        upload.xhr = null;
        if (status === 201 && data && typeof data.id === "number") {
          upload.id = data.id;
          upload.state = "done";
          bar.value = 100;
          say(`${upload.file.name} is ready to send.`);
        } else {
          upload.state = "failed";
          upload.error = uploadError(status, data);
          say(`${upload.file.name}: ${upload.error}`);
        }
        drawState(upload);
        composer.dispatchEvent(new CustomEvent("jobchat:attachments"));
      };
      xhr.addEventListener("load", () => finished(xhr.status, xhr.response));
      xhr.addEventListener("error", () => finished(0, null));
      xhr.send(form);
    }

    function drop(upload) {
      const at = uploads.indexOf(upload);
      if (at === -1) return;
      uploads.splice(at, 1);
      if (upload.xhr) { const xhr = upload.xhr; upload.xhr = null; xhr.abort(); }
      if (upload.preview) URL.revokeObjectURL(upload.preview);
      upload.li.remove();
      refresh();
      composer.dispatchEvent(new CustomEvent("jobchat:attachments"));
    }

    function add(files) {
      const list = [...files].filter((f) => f instanceof File);
      if (!list.length) return;
      for (const file of list) {
        const upload = { file, li: null, xhr: null, id: null, state: "uploading", error: "", preview: null };
        uploads.push(upload);
        chips.append(chip(upload));
        if (uploads.length > MAX_FILES) {
          upload.state = "failed";
          upload.error = `One message takes up to ${MAX_FILES} files.`;
          drawState(upload);
          upload.li.querySelector(".chip-retry").hidden = true;
        } else {
          start(upload);
        }
      }
      refresh();
      say(list.length === 1 ? `Uploading ${list[0].name}.` : `Uploading ${list.length} files.`);
    }

    input.addEventListener("change", () => {
      add(input.files);
      input.value = "";
    });

    // Paste: files or images on the clipboard become uploads; text pastes as ever.
    if (textarea) textarea.addEventListener("paste", (event) => {
      const data = event.clipboardData;
      if (!data) return;
      const files = [...data.files];
      if (!files.length) {
        for (const item of data.items || []) {
          if (item.kind === "file") { const f = item.getAsFile(); if (f) files.push(f); }
        }
      }
      if (!files.length) return;
      event.preventDefault();
      add(files.map((f) => (f.name && f.name !== "image.png") ? f
        : new File([f], `Pasted image ${new Date().toISOString().slice(0, 19).replace("T", " ").replace(/:/g, ".")}.png`, { type: f.type })));
    });

    const api = {
      add,
      ids: () => uploads.filter((u) => u.state === "done").map((u) => u.id),
      busy: () => uploads.some((u) => u.state === "uploading"),
      failed: () => uploads.some((u) => u.state === "failed"),
      clear: () => { for (const u of [...uploads]) drop(u); },
    };
    composer.jobchatAttachments = api;
    composers.set(composer, api);
    refresh();
    return api;
  }

  for (const composer of document.querySelectorAll("form.composer")) setUp(composer);

  // "Send later" cannot carry files yet (the API refuses them): say so before schedule.js
  // (a capture listener on the document) takes the submit, rather than drop them.
  window.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("form.composer")) return;
    const later = form.querySelector("input[name=send_later]:checked");
    const api = composers.get(form);
    if (!later || later.value === "now" || !api || !(api.ids().length || api.busy() || api.failed())) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    const error = form.querySelector(".form-error");
    if (error) {
      error.textContent = "Files can’t be scheduled yet: send them now, or remove them to schedule the text.";
      error.hidden = false;
    }
  }, true);

  // --- drag and drop: onto the thread (history or composer) ------------------------------------

  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  const target = (event) => {
    const thread = event.target instanceof Element && event.target.closest(".thread");
    const composer = thread && thread.querySelector("form.composer");
    return composer ? { thread, composer } : null;
  };
  let depth = 0;
  let shown = null;
  function unshow() {
    depth = 0;
    if (shown) shown.classList.remove("dragging");
    shown = null;
  }
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    const where = target(event);
    if (!where) return;
    event.preventDefault();
    depth += 1;
    if (shown !== where.thread) { unshow(); depth = 1; shown = where.thread; shown.classList.add("dragging"); }
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event) || !target(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("dragleave", (event) => {
    if (!shown || !hasFiles(event)) return;
    depth -= 1;
    if (depth <= 0) unshow();
  });
  document.addEventListener("drop", (event) => {
    const where = target(event);
    unshow();
    if (!where || !event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    const api = setUp(where.composer);
    if (api) api.add(event.dataTransfer.files);
  });
  window.addEventListener("blur", unshow);

  // --- the lightbox: a thumbnail opens the image itself, over the page ------------------------

  let lightbox = null;
  function openLightbox(link) {
    if (!lightbox) {
      lightbox = document.createElement("dialog");
      lightbox.className = "lightbox";
      lightbox.setAttribute("aria-label", "Image");
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = "";
      const caption = document.createElement("figcaption");
      const name = document.createElement("span");
      name.className = "lightbox-name";
      const download = document.createElement("a");
      download.className = "lightbox-download";
      download.textContent = "Download";
      const close = document.createElement("button");
      close.type = "button";
      close.className = "lightbox-close";
      close.textContent = "Close";
      close.addEventListener("click", () => lightbox.close());
      caption.append(name, download, close);
      figure.append(img, caption);
      lightbox.append(figure);
      lightbox.addEventListener("click", (event) => { if (event.target === lightbox) lightbox.close(); });
      lightbox.addEventListener("close", () => {
        lightbox.querySelector("img").removeAttribute("src");
        if (lightbox.opener && lightbox.opener.isConnected) lightbox.opener.focus();
      });
      document.body.append(lightbox);
    }
    const name = link.dataset.filename || "";
    const img = lightbox.querySelector("img");
    img.src = link.dataset.full || link.getAttribute("href");
    img.alt = name;
    lightbox.setAttribute("aria-label", name || "Image");
    lightbox.querySelector(".lightbox-name").textContent = name;
    const download = lightbox.querySelector(".lightbox-download");
    download.href = link.getAttribute("href");
    download.setAttribute("download", name);
    lightbox.opener = link;
    lightbox.showModal();
    lightbox.querySelector(".lightbox-close").focus();
  }
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element && event.target.closest("a[data-lightbox]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openLightbox(link);
  });
})();
