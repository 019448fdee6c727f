// The device's outbox: what a person sent while offline (an acknowledgement, a report), kept encrypted in
// IndexedDB and sent when the network is back. Loaded by the pages and by the service worker (importScripts).
//
// At rest: every item is AES-GCM encrypted under a 256-bit key made by WebCrypto as non-extractable, so the
// key itself can be used by this origin's scripts but never read out; IndexedDB holds only ciphertext.
// Sending: the session's CSRF token is fetched just before (GET /session/csrf), sent as X-CSRF-Token, and an
// item is sent only by the account that made it. Every item is safe to send twice: acknowledging is
// idempotent in routing, and a report carries its own Idempotency-Key, so intake makes one concern.
"use strict";

const SafeguardQueue = (() => {
  const DB = "safeguard-outbox";
  const KEY_NAME = "outbox-key";
  const LOCK = "safeguard-outbox";

  function database() {
    return new Promise((resolve, reject) => {
      const opening = indexedDB.open(DB, 1);
      opening.onupgradeneeded = () => {
        opening.result.createObjectStore("keys");
        opening.result.createObjectStore("items", { autoIncrement: true });
      };
      opening.onsuccess = () => resolve(opening.result);
      opening.onerror = () => reject(opening.error);
    });
  }

  // One transaction on one store; `work` gets the store and returns what to resolve with (a request or a value).
  async function inStore(name, mode, work) {
    const db = await database();
    try {
      return await new Promise((resolve, reject) => {
        const transaction = db.transaction(name, mode);
        let outcome;
        transaction.oncomplete = () => resolve(outcome instanceof IDBRequest ? outcome.result : outcome);
        transaction.onerror = () => reject(transaction.error);
        transaction.onabort = () => reject(transaction.error);
        outcome = work(transaction.objectStore(name));
      });
    } finally {
      db.close();
    }
  }

  async function outboxKey() {
    const kept = await inStore("keys", "readonly", (store) => store.get(KEY_NAME));
    if (kept) return kept;
    const made = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    try {
      await inStore("keys", "readwrite", (store) => store.add(made, KEY_NAME));  // add: never replace another's
      return made;
    } catch (raced) {
      return inStore("keys", "readonly", (store) => store.get(KEY_NAME));
    }
  }

  // Keep one send: `entry` is {account, url, fields: [[name, value], ...], label}.
  async function put(entry) {
    const key = await outboxKey();
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const plain = new TextEncoder().encode(JSON.stringify({ ...entry, queuedAt: new Date().toISOString() }));
    const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain);
    await inStore("items", "readwrite", (store) => store.add({ iv, data }));
  }

  async function sealed() {
    return inStore("items", "readonly", (store) => {
      const found = [];
      store.openCursor().onsuccess = (event) => {
        const cursor = event.target.result;
        if (!cursor) return;
        found.push({ id: cursor.key, iv: cursor.value.iv, data: cursor.value.data });
        cursor.continue();
      };
      return found;
    });
  }

  async function items() {
    const key = await outboxKey();
    const opened = [];
    for (const item of await sealed()) {
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: item.iv }, key, item.data);
      opened.push({ id: item.id, entry: JSON.parse(new TextDecoder().decode(plain)) });
    }
    return opened;
  }

  async function count(account) {
    return (await items()).filter((item) => !account || item.entry.account === account).length;
  }

  function remove(id) {
    return inStore("items", "readwrite", (store) => store.delete(id));
  }

  // A sent item's answer: 2xx sent; 4xx (but 401, 408, 429) refused for good; anything else: try again later.
  function verdict(status) {
    if (status >= 200 && status < 300) return "sent";
    if (status === 401) return "sign-in";
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) return "refused";
    return "later";
  }

  async function sendAll() {
    const report = { sent: [], refused: [], left: 0, signIn: false };
    let waiting;
    try {
      waiting = await items();
    } catch (unreadable) {
      return report;
    }
    if (!waiting.length) return report;
    let session;
    try {
      const answer = await fetch("/session/csrf", {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
      if (!answer.ok) return { ...report, left: waiting.length, signIn: answer.status === 401 };
      session = await answer.json();
    } catch (offline) {
      return { ...report, left: waiting.length };
    }
    const mine = waiting.filter((item) => item.entry.account === session.account);
    report.left = waiting.length - mine.length;  // another account's items wait for that person to sign in
    for (const [index, item] of mine.entries()) {
      let answer;
      try {
        answer = await fetch(item.entry.url, {
          method: "POST",
          credentials: "same-origin",
          cache: "no-store",
          redirect: "manual",
          headers: { Accept: "application/json", "X-CSRF-Token": session.csrf_token },
          body: new URLSearchParams(item.entry.fields),
        });
      } catch (offline) {
        report.left += mine.length - index;
        break;
      }
      const said = verdict(answer.status);
      if (said === "sent" || said === "refused") {
        await remove(item.id);
        report[said].push(item.entry.label);
        continue;
      }
      report.left += mine.length - index;
      report.signIn = said === "sign-in";
      break;
    }
    return report;
  }

  // Send everything this session may send; one sender at a time on the device where Web Locks exist.
  function flush() {
    if (self.navigator && navigator.locks) return navigator.locks.request(LOCK, sendAll);
    return sendAll();
  }

  return { put, count, flush, items, verdict };
})();

self.SafeguardQueue = SafeguardQueue;
