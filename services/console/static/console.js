// The console's script: live inbox news over server-sent events, the service worker, and the offline outbox
// (queue.js): a form marked data-queue that is sent while the device is offline is kept, encrypted, and sent
// when the network comes back (Background Sync where the browser has it, else on "online" and on page load).
"use strict";

// The same one-tap form the server renders for a case already in the inbox.
function acknowledgeForm(caseId, csrfToken) {
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/cases/" + encodeURIComponent(caseId) + "/commands";
  form.className = "inline";
  form.dataset.queue = "acknowledge";
  for (const [name, value] of [["csrf_token", csrfToken], ["command", "acknowledge"]]) {
    const field = document.createElement("input");
    field.type = "hidden";
    field.name = name;
    field.value = value;
    form.append(field);
  }
  const button = document.createElement("button");
  button.textContent = "Acknowledge";
  form.append(button);
  keepWhenOffline(form);
  return form;
}

function showNews(list, live, news) {
  if (document.getElementById("case-" + news.case_id)) return;
  const item = document.createElement("li");
  item.id = "case-" + news.case_id;
  item.className = "case urgency-" + (news.urgency || "unknown") + " status-" + news.status;
  const link = document.createElement("a");
  link.href = "/cases/" + encodeURIComponent(news.case_id);
  const reference = document.createElement("strong");
  reference.textContent = news.reference;  // text only: nothing from the server is parsed as HTML
  link.append(reference, " " + String(news.kind || "").replaceAll("_", " "));
  const tag = document.createElement("span");
  tag.className = "tag";
  tag.textContent = news.urgency || "not triaged";
  item.append(link, tag);
  if (list.dataset.acknowledge && news.status === "open") item.append(acknowledgeForm(news.case_id, list.dataset.acknowledge));
  const empty = list.querySelector(".empty");
  if (empty) empty.remove();
  list.prepend(item);
  live.hidden = false;
  live.textContent = "New: " + news.reference;
}

function followInbox() {
  const live = document.getElementById("live");
  const list = document.getElementById("cases");
  if (!live || !list || !window.EventSource) return;
  const source = new EventSource(live.dataset.events);
  source.addEventListener("case", (message) => showNews(list, live, JSON.parse(message.data)));
}

const WORDS = { acknowledge: "acknowledgement", report: "report" };

function notice(text) {
  const box = document.getElementById("outbox");
  if (!box) return;
  box.textContent = text;
  box.hidden = !text;
}

function counted(labels) {
  const tally = {};
  for (const label of labels) tally[label] = (tally[label] || 0) + 1;
  return Object.entries(tally).map(([label, n]) => n + " " + (WORDS[label] || label) + (n > 1 ? "s" : "")).join(", ");
}

function tell(report) {
  const parts = [];
  if (report.sent.length) parts.push("Sent what this device kept while offline: " + counted(report.sent) + ".");
  if (report.refused.length) parts.push("Refused, so not sent: " + counted(report.refused) + "; do it again from the page.");
  if (report.left) parts.push(report.left + " still waiting on this device" + (report.signIn ? ": sign in to send." : "."));
  if (parts.length) notice(parts.join(" "));
}

function askForSync() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.ready
    .then((registration) => registration.sync && registration.sync.register("safeguard-outbox"))
    .catch(() => {});
}

async function sendKept() {
  if (!window.SafeguardQueue || !navigator.onLine || !document.body.dataset.account) return;
  try {
    tell(await SafeguardQueue.flush());
  } catch (failed) {
    notice("What this device kept could not be read or sent; it stays until it can be.");
  }
}

function keepWhenOffline(form) {
  form.addEventListener("submit", async (event) => {
    const account = document.body.dataset.account;
    if (navigator.onLine || !account || !window.SafeguardQueue || !window.crypto || !crypto.subtle) return;
    event.preventDefault();
    const fields = [];
    for (const [name, value] of new FormData(form).entries()) {
      if (name === "csrf_token") continue;  // the session's token is fetched when it is sent
      // Each kept report its own key, even from a page copy kept for offline use: intake makes one concern each.
      fields.push([name, name === "idempotency_key" ? crypto.randomUUID() : String(value)]);
    }
    const label = form.dataset.queue;
    try {
      await SafeguardQueue.put({ account, url: new URL(form.action).pathname, fields, label });
    } catch (failed) {
      notice("You are offline and this device could not keep the " + (WORDS[label] || label) + ". Try again.");
      return;
    }
    form.reset();
    const button = form.querySelector("button");
    if (button && label === "acknowledge") {
      button.disabled = true;
      button.textContent = "Acknowledgement kept";
    }
    notice("You are offline. The " + (WORDS[label] || label) + " is kept on this device (encrypted) and will be sent when you are back online.");
    askForSync();
  });
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
  navigator.serviceWorker.addEventListener("message", (message) => {
    if (message.data && message.data.outbox) tell(message.data.outbox);
  });
}
// Signing out forgets the report form kept for offline use (it names the account); kept sends stay, encrypted,
// for the same account to send once it signs in again.
function forgetPagesOnSignOut(form) {
  form.addEventListener("submit", (event) => {
    if (!window.caches || form.dataset.forgotten) return;
    event.preventDefault();
    form.dataset.forgotten = "yes";
    caches.delete("safeguard-pages-v1").catch(() => {}).finally(() => form.submit());
  });
}

document.querySelectorAll("form[data-queue]").forEach(keepWhenOffline);
document.querySelectorAll('form[action="/sign-out"], form[action="/sign-out-everywhere"]').forEach(forgetPagesOnSignOut);
window.addEventListener("online", sendKept);
sendKept();
followInbox();
