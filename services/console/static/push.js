// This device's push subscription (/me/device): the browser subscribes itself with notifications' VAPID key
// through the service worker and hands the subscription to the console, which sends it to notifications for the
// signed-in person; or it stops alerts here. The service worker shows what a push says (push-alerts.js).
"use strict";

function applicationServerKey(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(base64), (character) => character.charCodeAt(0));
}

function pushState(text) {
  const box = document.getElementById("push-state");
  box.textContent = text;
  box.hidden = !text;
}

function showSubscribed(subscribed) {
  document.getElementById("push-subscribe").hidden = subscribed;
  document.getElementById("push-unsubscribe").hidden = !subscribed;
  pushState(subscribed ? "This device gets alerts." : "This device gets no alerts.");
}

async function pushManager() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    throw new Error("This browser cannot get push alerts.");
  }
  return (await navigator.serviceWorker.ready).pushManager;
}

// Sends the form with what the browser adds; the console answers {"ok", "error"}. A missing subscription is
// fine when stopping alerts: notifications already holds none for this browser.
async function tellConsole(form, fields, { missingIsFine = false } = {}) {
  const body = new FormData(form);
  for (const [name, value] of Object.entries(fields)) body.set(name, value);
  // getAttribute: the form's field named "action" hides the form's own `action` property.
  const url = form.getAttribute("action");
  const answer = await fetch(url, { method: "POST", body, headers: { Accept: "application/json" } });
  if (missingIsFine && answer.status === 404) return;
  let said = {};
  try {
    said = await answer.json();
  } catch (unreadable) {
    said = {};
  }
  if (!answer.ok || !said.ok) throw new Error(said.error || "The console refused (HTTP " + answer.status + ").");
}

async function subscribe(form, key) {
  const manager = await pushManager();
  if (window.Notification && Notification.permission === "default") await Notification.requestPermission();
  const subscription =
    (await manager.getSubscription()) ||
    (await manager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey(key) }));
  await tellConsole(form, { subscription: JSON.stringify(subscription.toJSON()) });
}

async function unsubscribe(form) {
  const subscription = await (await pushManager()).getSubscription();
  if (!subscription) return;
  await tellConsole(form, { endpoint: subscription.endpoint }, { missingIsFine: true });
  await subscription.unsubscribe();
}

function onSubmit(form, work, subscribedAfter) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await work(form);
      showSubscribed(subscribedAfter);
    } catch (failed) {
      pushState("Not done: " + (failed && failed.message ? failed.message : "this browser refused."));
    } finally {
      button.disabled = false;
    }
  });
}

function setUpPush() {
  const panel = document.getElementById("push");
  if (!panel) return;
  onSubmit(document.getElementById("push-subscribe"), (form) => subscribe(form, panel.dataset.key), true);
  onSubmit(document.getElementById("push-unsubscribe"), unsubscribe, false);
  pushManager()
    .then((manager) => manager.getSubscription())
    .then((subscription) => showSubscribed(Boolean(subscription)))
    .catch((failed) => pushState(failed.message));
}

setUpPush();
