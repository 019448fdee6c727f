// Safeguard staff service worker: shows the lock-screen-safe alert a push carries and opens its link on tap.
self.addEventListener("push", (event) => {
  const alert = event.data ? event.data.json() : { title: "Safeguarding alert", body: "Open Safeguard.", url: "/staff/" };
  event.waitUntil(
    self.registration.showNotification(alert.title, {
      body: alert.body,
      tag: alert.tag,
      requireInteraction: true,
      icon: "/staff/icon.svg",
      data: { url: alert.url },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (url) event.waitUntil(self.clients.openWindow(url));
});
