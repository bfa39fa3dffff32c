// Templates: the composer's picker (a "Templates" button, or "/" in an empty message) and the
// templates page's helpers (click a merge field to insert it; ask before deleting).
// Everything drawn from a template or a preview is set with textContent: this script never
// builds markup out of user text, so a candidate named "<script>" stays text.
"use strict";

(() => {
  if (window.jobchatTemplates) return; // included once per composer: set up once per page
  window.jobchatTemplates = true;

  const token = document.querySelector('meta[name="csrf-token"]');
  const csrf = token ? token.content : "";

  async function api(method, path, payload) {
    try {
      const response = await fetch(path, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "X-Requested-With": "fetch" },
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
      let data = null;
      try { data = await response.json(); } catch { data = null; }
      return { ok: response.ok, status: response.status, data };
    } catch {
      return { ok: false, status: 0, data: null };
    }
  }

  function message(result) {
    const error = result.data && result.data.error;
    if (error && error.message) return error.message;
    return result.status === 0 ? "You seem to be offline; try again." : `Something went wrong (${result.status}); try again.`;
  }

  // A merge field as written in a template, with or without spaces and a fallback.
  const placeholder = (field) => new RegExp(`\\{\\{\\s*${field.replace(/\./g, "\\.")}\\s*\\}\\}`, "g");

  function setValue(input, value) {
    input.value = value;
    // app.js keeps the draft and the composer's height on "input".
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // --- the templates page --------------------------------------------------------------------

  let lastTarget = null;
  for (const target of document.querySelectorAll("[data-merge-target]")) {
    target.addEventListener("focus", () => { lastTarget = target; });
  }
  for (const button of document.querySelectorAll("[data-insert]")) {
    button.addEventListener("click", () => {
      const target = lastTarget || document.getElementById("template-body");
      if (!target) return;
      const start = target.selectionStart ?? target.value.length;
      const end = target.selectionEnd ?? start;
      const text = button.dataset.insert;
      target.value = target.value.slice(0, start) + text + target.value.slice(end);
      target.focus();
      target.setSelectionRange(start + text.length, start + text.length);
    });
  }

  const deleteForm = document.querySelector("form.template-delete");
  const confirmDialog = document.getElementById("template-confirm");
  if (deleteForm && confirmDialog && typeof confirmDialog.showModal === "function") {
    deleteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const opener = deleteForm.querySelector("button");
      document.getElementById("template-confirm-title").textContent = deleteForm.dataset.confirm;
      document.getElementById("template-confirm-detail").textContent = deleteForm.dataset.confirmDetail || "";
      confirmDialog.returnValue = "cancel";
      confirmDialog.addEventListener("close", () => {
        if (confirmDialog.returnValue === "confirm") deleteForm.submit();
        else opener.focus();
      }, { once: true });
      confirmDialog.showModal();
      // The safe choice has the focus: Enter or a stray tap deletes nothing.
      confirmDialog.querySelector("button[value=cancel]").focus();
    });
  }

  // --- the composer's picker ------------------------------------------------------------------

  // Asked again at each opening: one written in another tab a minute ago is there.
  async function loadTemplates() {
    const result = await api("GET", "/api/v1/templates");
    if (!result.ok) throw new Error(message(result));
    return result.data;
  }

  function setUp(bar) {
    const form = bar.closest("form");
    const textarea = document.getElementById(bar.dataset.bodyInput);
    const subject = document.getElementById(bar.dataset.subjectInput);
    const preview = document.getElementById(bar.dataset.preview);
    const undo = preview.querySelector(".tpl-preview-undo");
    const opener = bar.querySelector(".tpl-open");
    const panel = bar.querySelector(".tpl-panel");
    const search = bar.querySelector(".tpl-search");
    const list = bar.querySelector(".tpl-list");
    const status = bar.querySelector(".tpl-status");
    if (!form || !textarea || !panel) return;

    let items = [];
    let shown = [];
    let active = -1;
    let fields = {};
    let missing = []; // of the template last put into the composer
    let before = null; // what the composer held before it: Undo puts it back

    function context() {
      if (bar.dataset.conversation) return { conversation: Number(bar.dataset.conversation) };
      const refs = {};
      for (const name of ["application", "candidate", "job"]) {
        if (bar.dataset[name]) refs[name] = bar.dataset[name];
      }
      return refs;
    }

    function select(index) {
      active = index;
      for (const [i, li] of [...list.children].entries()) {
        li.setAttribute("aria-selected", String(i === index));
      }
      const li = list.children[index];
      if (li) {
        search.setAttribute("aria-activedescendant", li.id);
        li.scrollIntoView({ block: "nearest" });
      } else {
        search.removeAttribute("aria-activedescendant");
      }
    }

    function draw(keepChoice) {
      // A list that arrives while someone is choosing keeps their choice.
      const keep = keepChoice === true && shown[active] ? shown[active].id : null;
      const query = search.value.trim().toLowerCase();
      shown = items.filter((t) => !query || t.name.toLowerCase().includes(query) || t.body.toLowerCase().includes(query));
      list.replaceChildren();
      for (const t of shown) {
        const li = document.createElement("li");
        li.id = `${list.id}-${t.id}`;
        li.className = "tpl-option";
        li.setAttribute("role", "option");
        li.dataset.template = String(t.id);
        const name = document.createElement("span");
        name.className = "tpl-option-name";
        name.textContent = t.name;
        const text = document.createElement("span");
        text.className = "tpl-option-text";
        text.textContent = t.body.replace(/\s+/g, " ");
        li.append(name, text);
        if (t.shared && t.author.id !== document.body.dataset.meExt) {
          const tag = document.createElement("span");
          tag.className = "tpl-option-tag";
          tag.textContent = `Shared by ${t.author.name}`;
          li.append(tag);
        }
        li.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus in the search
        li.addEventListener("click", () => choose(t));
        list.append(li);
      }
      if (!items.length) status.textContent = "You have no templates yet: write one under “Manage templates”.";
      else if (!shown.length) status.textContent = `No template matches “${search.value.trim()}”.`;
      else status.textContent = `${shown.length} template${shown.length === 1 ? "" : "s"}: arrows to move, Enter to choose.`;
      const kept = shown.findIndex((t) => t.id === keep);
      select(kept >= 0 ? kept : shown.length ? 0 : -1);
    }

    // The list opens over the thread (upwards) or the page (downwards): it gets the room there
    // is, scrolling inside, so it never covers the chat's header or runs off the screen. Asked
    // again on a resize: a phone's keyboard takes half the screen when the search has focus.
    function fit() {
      if (panel.hidden) return;
      const gap = 8;
      const box = bar.getBoundingClientRect();
      const view = window.visualViewport;
      const viewTop = view ? view.offsetTop : 0;
      const viewBottom = view ? view.offsetTop + view.height : window.innerHeight;
      let room;
      if (bar.dataset.drop === "down") {
        room = viewBottom - box.bottom - gap;
      } else {
        const thread = bar.closest(".thread");
        const history = thread && thread.querySelector(".scroller");
        const topbar = document.querySelector(".topbar");
        const floor = Math.max(viewTop, topbar ? topbar.getBoundingClientRect().bottom : 0);
        // Best over the history only; on a short screen over the chat's header too, if that
        // is what it takes to show a few templates; never above the thread.
        const under = (el) => Math.max(floor, el.getBoundingClientRect().top);
        room = box.top - gap - (history ? under(history) : floor);
        if (thread && room < 200) room = box.top - gap - under(thread);
      }
      panel.style.maxHeight = `${Math.max(Math.floor(room), 120)}px`;
    }
    window.addEventListener("resize", fit);
    if (window.visualViewport) window.visualViewport.addEventListener("resize", fit);

    async function open() {
      panel.hidden = false;
      fit();
      opener.setAttribute("aria-expanded", "true");
      search.value = "";
      search.focus();
      if (items.length) draw(false); // what was there last time, until the list arrives
      else { status.textContent = "Loading templates…"; list.replaceChildren(); }
      try {
        const data = await loadTemplates();
        items = data.items;
        fields = Object.fromEntries(data.fields.map((f) => [f.name, f.description]));
      } catch (error) {
        status.textContent = error.message;
        return;
      }
      if (!panel.hidden) draw(true);
    }

    function close(focus) {
      if (panel.hidden) return;
      panel.hidden = true;
      opener.setAttribute("aria-expanded", "false");
      search.removeAttribute("aria-activedescendant");
      if (focus) focus.focus();
    }

    opener.addEventListener("click", () => (panel.hidden ? open() : close(opener)));
    search.addEventListener("input", () => draw(false));
    search.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!shown.length) return;
        const step = event.key === "ArrowDown" ? 1 : -1;
        select((active + step + shown.length) % shown.length);
      } else if (event.key === "Home" && shown.length && !search.value) {
        event.preventDefault(); select(0);
      } else if (event.key === "End" && shown.length && !search.value) {
        event.preventDefault(); select(shown.length - 1);
      } else if (event.key === "Enter") {
        event.preventDefault(); // never the composer's send
        if (shown[active]) choose(shown[active]);
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        close(textarea);
      } else if (event.key === "Tab") {
        close(null);
      }
    });
    document.addEventListener("click", (event) => {
      if (!panel.hidden && !bar.contains(event.target)) close(null);
    });

    // "/" at the start of an empty message opens the picker instead of being typed.
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "/" && !textarea.value && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        open();
      }
    });

    function describe(field) {
      const what = fields[field];
      return what ? `${what.charAt(0).toLowerCase()}${what.slice(1)} ({{${field}}})` : `{{${field}}}`;
    }

    // The preview's text with each missing field marked (text nodes and <mark>s, never HTML).
    function marked(text, fieldsMissing) {
      const nodes = [];
      if (!fieldsMissing.length) return [document.createTextNode(text)];
      const any = new RegExp(fieldsMissing.map((f) => placeholder(f).source).join("|"), "g");
      let last = 0;
      for (const match of text.matchAll(any)) {
        nodes.push(document.createTextNode(text.slice(last, match.index)));
        const mark = document.createElement("mark");
        mark.className = "tpl-missing-mark";
        mark.textContent = match[0];
        nodes.push(mark);
        last = match.index + match[0].length;
      }
      nodes.push(document.createTextNode(text.slice(last)));
      return nodes;
    }

    function stillMissing() {
      return missing.filter((f) => placeholder(f).test(textarea.value) || (subject && placeholder(f).test(subject.value)));
    }

    function showMissing(alert) {
      const note = preview.querySelector(".tpl-missing");
      const left = stillMissing();
      if (!left.length) { note.hidden = true; note.textContent = ""; return; }
      const list = left.map(describe).join(", ");
      note.textContent = alert
        ? `Replace the marked text before sending: there is no value here for ${list}.`
        : `No value here for ${list}: replace the marked text in your message before you send it.`;
      note.hidden = false;
    }

    // The note above the composer: the template's name, then what was done and what is next.
    function title(name, rest) {
      const strong = document.createElement("strong");
      strong.textContent = `“${name}”`;
      preview.querySelector(".tpl-preview-title").replaceChildren(strong, document.createTextNode(rest));
    }

    async function choose(t) {
      close(null);
      status.textContent = "";
      const result = await api("POST", `/api/v1/templates/${Number(t.id)}/preview`, context());
      if (!result.ok) {
        preview.hidden = false;
        preview.classList.remove("complete");
        title(t.name, " could not be used");
        preview.querySelector(".tpl-preview-subject").hidden = true;
        preview.querySelector(".tpl-preview-body").textContent = message(result);
        undo.hidden = true;
        missing = [];
        showMissing(false);
        return;
      }
      const out = result.data;
      // Kept from the first of several choices in a row: Undo goes back to what was written.
      if (!before || preview.hidden) before = { body: textarea.value, subject: subject ? subject.value : null };
      missing = out.missing;
      setValue(textarea, out.body);
      const subjectLine = preview.querySelector(".tpl-preview-subject");
      if (subject && out.subject) {
        setValue(subject, out.subject);
        subjectLine.replaceChildren(document.createTextNode("Subject: "), ...marked(out.subject, missing));
        subjectLine.hidden = false;
      } else {
        subjectLine.hidden = true;
      }
      const who = bar.dataset.for ? ` for ${bar.dataset.for}` : "";
      // Nothing to mark: the message box itself is the preview, and the note is one line (the
      // whole text twice would leave the thread a sliver of the screen).
      title(t.name, ` filled in${who} — edit, then send.`);
      preview.classList.toggle("complete", !missing.length);
      preview.querySelector(".tpl-preview-body").replaceChildren(...marked(out.body, missing));
      undo.hidden = false;
      preview.hidden = false;
      showMissing(false);
      textarea.focus();
      // The first missing value is selected, ready to be typed over.
      const first = missing.length ? placeholder(missing[0]).exec(textarea.value) : null;
      if (first) textarea.setSelectionRange(first.index, first.index + first[0].length);
      else textarea.setSelectionRange(textarea.value.length, textarea.value.length);
    }

    preview.querySelector(".tpl-preview-close").addEventListener("click", () => {
      preview.hidden = true;
      textarea.focus();
    });
    undo.addEventListener("click", () => {
      if (before) {
        setValue(textarea, before.body);
        if (subject && before.subject !== null) setValue(subject, before.subject);
      }
      before = null;
      missing = [];
      preview.hidden = true;
      textarea.focus();
    });
    textarea.addEventListener("input", () => { if (missing.length && !preview.hidden) showMissing(false); });

    // A message that still says {{candidate.first_name}} is not sent to a candidate: caught
    // before app.js (or the plain form) sends it.
    document.addEventListener("submit", (event) => {
      if (event.target !== form || !missing.length) return;
      if (!textarea.value.trim()) { missing = []; return; }
      if (!stillMissing().length) { missing = []; return; }
      event.preventDefault();
      event.stopImmediatePropagation();
      preview.hidden = false;
      showMissing(true);
      const first = placeholder(stillMissing()[0]).exec(textarea.value);
      textarea.focus();
      if (first) textarea.setSelectionRange(first.index, first.index + first[0].length);
    }, true);
    // After a send the composer is empty: the preview has done its job.
    form.addEventListener("submit", () => {
      setTimeout(() => { if (!textarea.value) { preview.hidden = true; missing = []; before = null; } }, 0);
    });
    document.addEventListener("jobchat:sent", () => { preview.hidden = true; missing = []; before = null; });
  }

  for (const bar of document.querySelectorAll("[data-templates]")) setUp(bar);
})();
