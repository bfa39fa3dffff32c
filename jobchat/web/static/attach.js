// Files in a thread's composer: the paperclip (a file input), drag and drop onto the thread,
// and paste. Each file uploads at once (XHR, for its progress) to
// POST /api/v1/conversations/{id}/attachments and shows as a chip: a preview for an image,
// the name, the size, a progress bar, the error in words (Retry when trying again can help), a remove
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

  // The allowed types by extension, named as a person knows them: a file whose name says one
  // of these but whose contents the server refuses is "not a real PDF", not a wrong type.
  const KNOWN = {
    pdf: "PDF", doc: "Word document", docx: "Word document", odt: "OpenDocument text", rtf: "RTF file",
    txt: "text file", png: "PNG image", jpg: "JPEG image", jpeg: "JPEG image", gif: "GIF image",
    webp: "WebP image", heic: "HEIC photo", heif: "HEIC photo",
  };
  const extension = (name) => ((name.match(/\.([a-z0-9]{1,5})$/i) || [null, ""])[1]).toLowerCase();

  // Why an upload failed: a short line for the chip, the full reason (the chip's description),
  // and whether trying again can help (a lost connection, a server error, too many requests:
  // yes; a refusal of the file itself: no, only Remove).
  function uploadError(status, data, file, limitText) {
    const error = data && data.error;
    const message = (error && error.message) || "";
    if (status === 415) {
      const kind = KNOWN[extension(file.name)];
      if (kind) return { short: `Not a real ${kind}`, full: `This isn’t a real ${kind}: its contents are another kind of file.`, retry: false };
      return { short: "Not an accepted type", full: "This type of file can’t be sent. Try a PDF, Word, OpenDocument, RTF, text or image file.", retry: false };
    }
    if (status === 413) return tooBig(limitText);
    if (status === 422 && ((error && error.code === "empty_file") || /empty/i.test(message))) return emptyFile();
    if (status === 0) return { short: "Upload failed", full: "Upload failed: you seem to be offline. Try again.", retry: true };
    if (status === 429) return { short: "Upload failed", full: "Too many uploads at once: wait a moment, then try again.", retry: true };
    if (status >= 500) return { short: "Upload failed", full: `${message || "The server could not take the file"} (${status}). Try again.`, retry: true };
    return { short: "Not accepted", full: message || `The server refused the file (${status}).`, retry: false };
  }
  function tooBig(limitText) {
    return limitText
      ? { short: `Over the ${limitText} limit`, full: `Too big to send: the limit is ${limitText} a file.`, retry: false }
      : { short: "Too big", full: "Too big to send.", retry: false };
  }
  const emptyFile = () => ({ short: "Empty file", full: "The file is empty: there is nothing to send.", retry: false });

  // A name cut in the middle when it is long: the stem shrinks with an ellipsis, the
  // extension stays (CSS cannot cut in the middle by itself).
  function nameParts(name) {
    const dot = name.lastIndexOf(".");
    const cut = dot > 0 && name.length - dot <= 6 ? dot : name.length;
    const stem = document.createElement("span");
    stem.className = "name-stem";
    stem.textContent = name.slice(0, cut);
    const ext = document.createElement("span");
    ext.className = "name-ext";
    ext.textContent = name.slice(cut);
    return [stem, ext];
  }
  let chipCount = 0;

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
    const maxBytes = Number(tray.dataset.maxBytes) || 0;
    const limitText = tray.dataset.maxText || "";
    const formError = composer.querySelector(".form-error");
    // With this script the files go through the API, not with the form.
    input.removeAttribute("name");
    const uploads = []; // {file, li, xhr, id, state: "uploading" | "done" | "failed", preview}

    function say(text) { if (status) status.textContent = text; }

    // The composer's own complaint about the files (app.js, on Send) goes once nothing it
    // complains of is left.
    const COMPLAINTS = {
      "Remove or retry the files that did not upload.": () => uploads.some((u) => u.state === "failed"),
      "Wait for the files to finish uploading.": () => uploads.some((u) => u.state === "uploading"),
    };
    function settle() {
      if (!formError || formError.hidden) return;
      const still = COMPLAINTS[formError.textContent];
      if (still && !still()) { formError.textContent = ""; formError.hidden = true; }
    }

    // One polite summary when the uploads have finished ("3 files ready", "2 files could not
    // be attached"), not each file's result in turn (a screen reader would keep only the last).
    function summarize() {
      if (uploads.some((u) => u.state === "uploading")) return;
      const count = (n, what) => (n === 1 ? `1 file ${what[0]}` : `${n} files ${what[1]}`);
      const done = uploads.filter((u) => u.state === "done").length;
      const failed = uploads.filter((u) => u.state === "failed").length;
      const parts = [];
      if (failed) parts.push(count(failed, ["could not be attached", "could not be attached"]));
      if (done) parts.push(count(done, ["ready", "ready"]));
      say(parts.length ? `${parts.join("; ")}.` : "");
    }

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
      const reason = li.querySelector(".chip-reason");
      bar.hidden = upload.state !== "uploading";
      retry.hidden = !(upload.state === "failed" && upload.error.retry);
      if (upload.state === "failed") {
        note.textContent = upload.error.short;
        reason.textContent = upload.error.full;
        li.title = `${upload.file.name}: ${upload.error.full}`;
        li.setAttribute("aria-invalid", "true");
      } else {
        li.removeAttribute("aria-invalid");
        li.removeAttribute("title");
        reason.textContent = "";
        note.textContent = upload.state === "done" ? "Ready" : "Uploading…";
      }
    }

    function chip(upload) {
      const li = document.createElement("li");
      li.className = "attach-chip";
      chipCount += 1;
      const reasonId = `chip-reason-${chipCount}`;
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
      name.append(...nameParts(file.name));
      const info = document.createElement("span");
      info.className = "chip-info";
      const size = document.createElement("span");
      size.className = "chip-size";
      size.textContent = `${humanSize(file.size)} · `;
      const note = document.createElement("span");
      note.className = "chip-note";
      info.append(size, note);
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", `Uploading ${file.name}`);
      // The full reason of a failure: the buttons' description for a screen reader, and shown
      // under the chip while it has focus or was tapped (the chip itself shows the short one).
      const reason = document.createElement("span");
      reason.className = "chip-reason";
      reason.id = reasonId;
      text.append(name, info, reason, bar);
      li.addEventListener("click", (event) => {
        if (!(event.target instanceof Element) || event.target.closest("button")) return;
        if (li.dataset.state === "failed") li.classList.toggle("open");
      });
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "chip-retry link-button";
      retry.textContent = "Retry";
      retry.setAttribute("aria-label", `Retry ${file.name}`);
      retry.setAttribute("aria-describedby", reasonId);
      retry.addEventListener("click", () => start(upload));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "chip-remove";
      remove.setAttribute("aria-label", `Remove ${file.name}`);
      remove.title = "Remove";
      remove.setAttribute("aria-describedby", reasonId);
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
      upload.li.classList.remove("open");
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
        } else {
          upload.state = "failed";
          upload.error = uploadError(status, data, upload.file, limitText);
        }
        drawState(upload);
        summarize();
        settle();
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
      settle();
      composer.dispatchEvent(new CustomEvent("jobchat:attachments"));
    }

    function add(files) {
      const list = [...files].filter((f) => f instanceof File);
      if (!list.length) return;
      for (const file of list) {
        const upload = { file, li: null, xhr: null, id: null, state: "uploading", error: null, preview: null };
        uploads.push(upload);
        chips.append(chip(upload));
        // Refused here, at once and without sending a byte, when the answer is known.
        let refusal = null;
        if (uploads.length > MAX_FILES) refusal = { short: "Too many files", full: `One message takes up to ${MAX_FILES} files.`, retry: false };
        else if (maxBytes && file.size > maxBytes) refusal = tooBig(limitText);
        else if (file.size === 0) refusal = emptyFile();
        if (refusal) {
          upload.state = "failed";
          upload.error = refusal;
          drawState(upload);
        } else {
          start(upload);
        }
      }
      refresh();
      if (uploads.some((u) => u.state === "uploading")) {
        say(list.length === 1 ? `Uploading ${list[0].name}.` : `Uploading ${list.length} files.`);
      } else {
        summarize();
      }
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
        : new File([f], `Pasted image ${localStamp(new Date())}.png`, { type: f.type })));
    });

    // "2026-12-05 14.03.09": the time on the person's own clock (a file name cannot hold ":").
    function localStamp(d) {
      const two = (n) => String(n).padStart(2, "0");
      return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}.${two(d.getMinutes())}.${two(d.getSeconds())}`;
    }

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
