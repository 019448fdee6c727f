// Safeguard staff service worker: shows the lock-screen-safe alert a push carries, says it was shown, opens its link on tap
// (push-alerts.js, which the console's service worker uses too).
importScripts("/staff/push-alerts.js");
SafeguardPushAlerts.listen(self, { icon: "/staff/icon.svg", home: "/staff/" });
