"""The push channel's answers to what push services say: gone, busy, refused, and one of several browsers;
and its one kept session: sends reuse a verified TLS connection to the push service until the channel closes."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.bench.loopback import LoopbackCertificates, make_certificates
from services.bench.push_device import new_device_keys, push_stand_in
from services.notifications.channels import Delivery, DeliveryFailed
from services.notifications.channels.push import WebPushChannel
from services.notifications.domain import RenderedNotification
from services.notifications.subscriptions import PushSubscription
from services.notifications.vapid import KeptVapidKey
from tests.support.webpush import LocalPushService, SubscribedBrowser, local_push_service

pytestmark = pytest.mark.integration


class InMemorySubscriptions:
    """A person's subscriptions in a dict (the SQL store is exercised by the service-level push test)."""

    def __init__(self) -> None:
        self.by_endpoint: dict[str, tuple[str, PushSubscription]] = {}

    def add(self, person_id: str, browser: SubscribedBrowser) -> None:
        keys = browser.subscription_json()["keys"]
        self.by_endpoint[browser.endpoint] = (
            person_id,
            PushSubscription(browser.endpoint, keys["p256dh"], keys["auth"]),
        )

    async def for_person(self, person_id: str) -> list[PushSubscription]:
        return [s for owner, s in self.by_endpoint.values() if owner == person_id]

    async def remove(self, endpoint: str, *, person_id: str | None = None) -> bool:
        return self.by_endpoint.pop(endpoint, None) is not None


MakeChannel = Callable[..., WebPushChannel]


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[MakeChannel]:
    """Makes push channels as the service does, and closes each at the end of the test, as the service's stop does."""
    made: list[WebPushChannel] = []

    def make(
        subscriptions: InMemorySubscriptions,
        *,
        trust: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> WebPushChannel:
        made.append(
            WebPushChannel(
                subscriptions,
                vapid=KeptVapidKey(tmp_path / "vapid.pem"),
                subject="mailto:safeguarding@example.org",
                ttl_seconds=60,
                timeout_seconds=5,
                trust=trust,
                clock=clock,
            )
        )
        return made[-1]

    yield make
    for each in made:
        await each.aclose()


def delivery() -> Delivery:
    message = RenderedNotification(
        title="URGENT safeguarding concern: SG-2026-CHANNEL1",
        body="A concern needs your attention.",
        ack_url="https://console.example.org/ack",
        urgency="immediate",
    )
    return Delivery(str(uuid.uuid4()), "p-dsl", message)


async def _two_browsers(pushes: LocalPushService, subscriptions: InMemorySubscriptions) -> list[SubscribedBrowser]:
    browsers = [pushes.new_browser(), pushes.new_browser()]
    for browser in browsers:
        subscriptions.add("p-dsl", browser)
    return browsers


@pytest.mark.parametrize(
    ("statuses", "retryable", "left"),
    [
        ((404, 410), False, 0),
        ((503, 429), True, 2),
        ((413, 400), False, 2),
        ((410, 503), True, 1),
    ],
)
async def test_when_no_browser_takes_the_message_the_failure_says_whether_to_retry(
    channel: MakeChannel, statuses: tuple[int, int], retryable: bool, left: int
) -> None:
    subscriptions = InMemorySubscriptions()
    async with local_push_service() as pushes:
        for browser, status in zip(await _two_browsers(pushes, subscriptions), statuses, strict=True):
            pushes.answer(browser, status)
        with pytest.raises(DeliveryFailed) as failed:
            await channel(subscriptions).send(delivery())
    assert failed.value.retryable is retryable
    assert len(subscriptions.by_endpoint) == left  # 404 and 410 forget the subscription, nothing else does


async def test_one_browser_taking_the_message_is_enough_and_a_gone_sibling_is_forgotten(channel: MakeChannel) -> None:
    subscriptions = InMemorySubscriptions()
    async with local_push_service() as pushes:
        gone, alive = await _two_browsers(pushes, subscriptions)
        pushes.answer(gone, 410)
        provider_id = await channel(subscriptions).send(delivery())
    assert provider_id.startswith(f"{pushes.origin}/message/")
    assert [r.browser for r in pushes.received] == [alive.endpoint.rsplit("/", 1)[1]]
    assert list(subscriptions.by_endpoint) == [alive.endpoint]


async def test_a_push_service_that_is_not_there_is_worth_retrying(channel: MakeChannel) -> None:
    subscriptions = InMemorySubscriptions()
    async with local_push_service() as pushes:
        browser = pushes.new_browser()
    subscriptions.add("p-dsl", browser)
    with pytest.raises(DeliveryFailed) as failed:
        await channel(subscriptions).send(delivery())
    assert failed.value.retryable is True and "unreachable" in str(failed.value)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCertificates:
    return make_certificates(tmp_path_factory.mktemp("push-tls"))


def subscribed_at(origin: str, person_id: str = "p-dsl") -> InMemorySubscriptions:
    subscriptions = InMemorySubscriptions()
    p256dh, auth = new_device_keys()
    endpoint = f"{origin}/push/{uuid.uuid4().hex}"
    subscriptions.by_endpoint[endpoint] = (person_id, PushSubscription(endpoint, p256dh, auth))
    return subscriptions


async def test_sends_reuse_one_verified_connection_and_closing_ends_it(
    channel: MakeChannel, certificates: LoopbackCertificates
) -> None:
    async with push_stand_in(certificates) as pushes:
        push = channel(subscribed_at(pushes.origin), trust=certificates.client_context())
        first = await push.send(delivery())
        second = await push.send(delivery())
        assert first.startswith(f"{pushes.origin}/message/") and second != first
        assert (pushes.pushes, pushes.connections) == (2, 1)  # one TLS handshake for both
        assert push.holds_connections

        await push.aclose()
        assert not push.holds_connections
        await push.aclose()  # closing twice is harmless
        await push.send(delivery())  # a send after closing opens a session of its own
        assert (pushes.pushes, pushes.connections) == (3, 2)


async def test_a_push_service_whose_certificate_is_not_trusted_is_refused(
    channel: MakeChannel, certificates: LoopbackCertificates
) -> None:
    async with push_stand_in(certificates) as pushes:
        push = channel(subscribed_at(pushes.origin))  # the system's trust, which does not include this run's CA
        with pytest.raises(DeliveryFailed) as failed:
            await push.send(delivery())
    assert pushes.pushes == 0 and "unreachable" in str(failed.value)


async def test_a_vapid_token_is_reused_for_an_hour_then_signed_anew(channel: MakeChannel) -> None:
    now = [time.time()]
    subscriptions = InMemorySubscriptions()
    async with local_push_service() as pushes:
        subscriptions.add("p-dsl", pushes.new_browser())
        push = channel(subscriptions, clock=lambda: now[0])
        await push.send(delivery())
        now[0] += 3599
        await push.send(delivery())
        now[0] += 1
        await push.send(delivery())
    first, reused, renewed = (r.headers["authorization"] for r in pushes.received)
    assert first == reused != renewed and pushes.refused == []  # the push service took every one
    assert [r.claims["exp"] for r in pushes.received][1:] == [int(now[0]) - 3600 + 12 * 3600, int(now[0]) + 12 * 3600]
