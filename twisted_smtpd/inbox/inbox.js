// The web inbox of twisted_smtpd: plain JavaScript, no build step.
// All message content is put in the page as text (textContent), never as
// HTML; a message's HTML part is only shown in a sandboxed iframe.
"use strict";

// loading: the list being fetched, if it is; again: a message arrived
// meanwhile, so the list must be fetched once more after it (the answer in
// flight may not have it).
const state = { selected: null, timer: null, loading: null, again: false };

function $(id) { return document.getElementById(id); }

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  td.title = text;
  row.appendChild(td);
}

function size(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function query() {
  const q = $("search").value.trim();
  if (!q) return "";
  return q;
}

function matches(message, q) {
  if (!q) return true;
  q = q.toLowerCase();
  const fields = [message.from, message.to.join(" "), message.headerFrom,
                  message.headerTo, message.subject];
  return fields.some((f) => (f || "").toLowerCase().includes(q));
}

function row(message) {
  const tr = document.createElement("tr");
  tr.dataset.id = message.id;
  cell(tr, message.headerFrom || message.from);
  cell(tr, message.to.join(", "));
  cell(tr, message.subject);
  cell(tr, new Date(message.date).toLocaleString());
  cell(tr, size(message.size));
  cell(tr, message.attachmentCount ? "att." : "");
  tr.addEventListener("click", () => show(message.id));
  return tr;
}

function updateCount() {
  const n = document.querySelectorAll("#list tbody tr").length;
  $("count").textContent = n + (n === 1 ? " message" : " messages");
  $("empty").hidden = n > 0;
}

async function fetchList() {
  do {
    state.again = false;
    const response = await fetch("api/messages");
    const messages = await response.json();
    const body = document.querySelector("#list tbody");
    body.replaceChildren();
    const q = query();
    for (const m of messages) {
      if (matches(m, q)) body.appendChild(row(m));
    }
    updateCount();
  } while (state.again);
}

async function load() {
  if (state.loading) {
    state.again = true;
    return state.loading;
  }
  state.loading = fetchList();
  try {
    await state.loading;
  } finally {
    state.loading = null;
  }
}

function added(message) {
  if (state.loading) {
    // The list in flight may not have it: fetch it again afterwards.
    state.again = true;
    return;
  }
  const body = document.querySelector("#list tbody");
  if (!matches(message, query()) ||
      body.querySelector(`tr[data-id="${CSS.escape(String(message.id))}"]`)) {
    return;
  }
  body.insertBefore(row(message), body.firstChild);
  updateCount();
}

function frameSource(id, images) {
  return "api/messages/" + encodeURIComponent(id) + "/html" +
    (images ? "?images=1" : "");
}

function tab(which) {
  $("text").hidden = which !== "text";
  $("html").hidden = which !== "html";
}

async function show(id) {
  const response = await fetch("api/messages/" + encodeURIComponent(id));
  if (!response.ok) { await load(); $("view").hidden = true; return; }
  const m = await response.json();
  state.selected = id;
  for (const tr of document.querySelectorAll("#list tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.id === id);
  }
  $("view").hidden = false;
  $("subject").textContent = m.subject || "(no subject)";
  const headers = document.querySelector("#headers tbody");
  headers.replaceChildren();
  const envelope = [["Envelope from", m.envelope.mail_from],
                    ["Envelope to", m.envelope.rcpt_tos.join(", ")]];
  for (const [name, value] of envelope.concat(m.headers)) {
    const tr = document.createElement("tr");
    cell(tr, name);
    cell(tr, value);
    headers.appendChild(tr);
  }
  const list = $("attachments");
  list.replaceChildren();
  for (const a of m.attachments) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = "api/messages/" + encodeURIComponent(id) + "/attachments/" + a.index;
    link.download = a.filename;
    link.textContent = a.filename + " (" + a.contentType + ", " + size(a.size) + ")";
    li.appendChild(link);
    list.appendChild(li);
  }
  $("raw").href = "api/messages/" + encodeURIComponent(id) + "/raw";
  $("text").textContent = m.text === null ? "(no text part)" : m.text;
  const hasHtml = m.html !== null;
  document.querySelector("[data-tab=html]").disabled = !hasHtml;
  $("images").hidden = !hasHtml;
  $("html").src = hasHtml ? frameSource(id, false) : "about:blank";
  tab(hasHtml && m.text === null ? "html" : "text");
}

async function remove(path) {
  await fetch(path, { method: "DELETE" });
  state.selected = null;
  $("view").hidden = true;
  await load();
}

function start() {
  $("search").addEventListener("input", () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(load, 200);
  });
  $("delete-all").addEventListener("click", () => remove("api/messages"));
  $("delete-one").addEventListener("click", () => {
    if (state.selected !== null) {
      remove("api/messages/" + encodeURIComponent(state.selected));
    }
  });
  $("images").addEventListener("click", () => {
    $("html").src = frameSource(state.selected, true);
    tab("html");
  });
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => tab(button.dataset.tab));
  }
  const events = new EventSource("api/events");
  events.addEventListener("message", (e) => added(JSON.parse(e.data)));
  // (Re)connected: load the list, so that nothing sent meanwhile is missed.
  events.addEventListener("open", load);
}

start();
