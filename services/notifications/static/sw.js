// Safeguard staff service worker: shows the lock-screen-safe alert a push carries, says it was shown, opens its link on tap.
const RECEIPT_RETRIES = [1000, 3000, 10000];

async function sendReceipt(alert) {
  // The push carries a token signed for this notification alone: the receipt proves only "shown on a device".
  if (!alert.receipt) return;
  const body = JSON.stringify({ notification_id: alert.tag, token: alert.receipt.token });
  for (const wait of [0, ...RECEIPT_RETRIES]) {
    if (wait) await new Promise((resolve) => setTimeout(resolve, wait));
    try {
      const answer = await fetch(alert.receipt.url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
      if (answer.status !== 503) return; // 503: the send itself is not recorded yet; try again shortly
    } catch (error) {
      // offline: try again
    }
  }
}

self.addEventListener("push", (event) => {
  const alert = event.data ? event.data.json() : { title: "Safeguarding alert", body: "Open Safeguard.", url: "/staff/" };
  event.waitUntil(
    self.registration
      .showNotification(alert.title, {
        body: alert.body,
        tag: alert.tag,
        requireInteraction: true,
        icon: "/staff/icon.svg",
        data: { url: alert.url },
      })
      .then(() => sendReceipt(alert))
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (url) event.waitUntil(self.clients.openWindow(url));
});
