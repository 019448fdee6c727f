// Turns on Safeguard alerts in this browser: registers the service worker, subscribes, and tells the server.
const status = document.getElementById("status");
const query = new URLSearchParams(location.search);
const proof = { notification_id: query.get("n") || "", token: query.get("t") || "" };

function say(text) {
  status.textContent = text;
}

async function subscribe() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    say("This browser cannot receive alerts. Use email and SMS, or another browser.");
    return;
  }
  if (!proof.notification_id || !proof.token) {
    say("Open this page from the link in a Safeguard alert so we know who you are.");
    return;
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    say("Alerts are blocked for this site. Allow notifications in the browser settings and try again.");
    return;
  }
  const registration = await navigator.serviceWorker.register("/staff/sw.js", { scope: "/staff/" });
  const { application_server_key } = await (await fetch("/api/v1/push/key")).json();
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: application_server_key,
  });
  const response = await fetch("/api/v1/push/subscriptions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ subscription: subscription.toJSON(), ...proof }),
  });
  say(response.ok ? "Alerts are on for this device." : "The server refused: the link may have expired.");
}

document.getElementById("subscribe").addEventListener("click", () => {
  subscribe().catch((error) => say(`Could not turn alerts on: ${error}`));
});
