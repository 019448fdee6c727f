// The console's only script: live inbox news over server-sent events, and the service worker.
"use strict";

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

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}
followInbox();
