// Push alerts in a service worker, shared by notifications' staff page and the console (one copy, served by both):
// show exactly the lock-screen-safe words notifications composed (urgency, reference and a link; never a name or
// what happened), say it was shown (the delivery receipt), and open the link when the alert is tapped.
"use strict";

const SafeguardPushAlerts = {
  // The alert a push carries; a push with no readable payload still wakes the person, with nothing in it.
  shown(data, home) {
    let alert = {};
    try {
      alert = data ? data.json() : {};
    } catch (unreadable) {
      alert = {};
    }
    return {
      title: String(alert.title || "Safeguarding alert"),
      body: String(alert.body || "Open Safeguard."),
      tag: alert.tag ? String(alert.tag) : undefined,
      url: String(alert.url || home),
      receipt: alert.receipt && alert.receipt.url && alert.receipt.token ? alert.receipt : null,
    };
  },

  // The push carries a token signed for this notification alone: the receipt proves only "shown on a device".
  async sendReceipt(alert, origin) {
    if (!alert.receipt || !alert.tag) return;
    const body = JSON.stringify({ notification_id: alert.tag, token: String(alert.receipt.token) });
    const url = new URL(String(alert.receipt.url), origin);
    // To notifications' own origin: JSON, and a 503 (the send not recorded yet) is tried again. To another origin
    // (the console's worker): text/plain needs no CORS preflight, but its answer cannot be read, so each try is
    // sent; the endpoint records a receipt once however often it comes.
    const same = url.origin === origin;
    for (const wait of [0, 1000, 3000, 10000]) {
      if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
      try {
        const answer = await fetch(url.href, {
          method: "POST",
          mode: same ? "same-origin" : "no-cors",
          headers: { "Content-Type": same ? "application/json" : "text/plain" },
          body,
        });
        if (same && answer.status !== 503) return;
      } catch (offline) {
        // no network: try again
      }
    }
  },

  // Only a web address is opened: never a script or a data URL a push might carry.
  openable(url, origin) {
    try {
      const parsed = new URL(url, origin);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : "";
    } catch (bad) {
      return "";
    }
  },

  listen(worker, options) {
    worker.addEventListener("push", (event) => {
      const alert = SafeguardPushAlerts.shown(event.data, options.home);
      event.waitUntil(
        worker.registration.showNotification(alert.title, {
          body: alert.body,
          tag: alert.tag,
          requireInteraction: true,
          icon: options.icon,
          data: { url: alert.url },
        })
        .then(() => SafeguardPushAlerts.sendReceipt(alert, worker.location.origin))
      );
    });
    worker.addEventListener("notificationclick", (event) => {
      event.notification.close();
      const wanted = event.notification.data && event.notification.data.url;
      const url = SafeguardPushAlerts.openable(wanted || options.home, worker.location.origin);
      if (url) event.waitUntil(worker.clients.openWindow(url));
    });
  },
};
