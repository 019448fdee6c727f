// Push alerts in a service worker, shared by notifications' staff page and the console (one copy, served by both):
// show exactly the lock-screen-safe words notifications composed (urgency, reference and a link; never a name or
// what happened), and open the link when the alert is tapped.
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
    };
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
