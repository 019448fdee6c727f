"""The SMS provider's status callbacks are signed Twilio's way: HMAC-SHA1 (auth token) over the URL and the sorted
POST parameters, base64. A changed parameter, URL or key fails."""

from __future__ import annotations

import base64
import hashlib
import hmac

from services.notifications.receipts import provider_signature, signature_valid

URL = "https://notify.st-marks.example.org/api/v1/sms/status?n=3f0c"
PARAMS = [("MessageStatus", "delivered"), ("AccountSid", "AC-1"), ("MessageSid", "SM-1")]


def test_the_signature_is_hmac_sha1_over_the_url_then_each_name_and_value_sorted_by_name() -> None:
    signed = URL + "AccountSidAC-1" + "MessageSidSM-1" + "MessageStatusdelivered"
    expected = base64.b64encode(hmac.new(b"auth-token", signed.encode(), hashlib.sha1).digest()).decode()
    assert provider_signature(URL, PARAMS, auth_token="auth-token") == expected


def test_anything_changed_fails_the_check() -> None:
    good = provider_signature(URL, PARAMS, auth_token="auth-token")
    assert signature_valid(URL, PARAMS, auth_token="auth-token", presented=good)
    tampered = [("MessageStatus", "undelivered"), *PARAMS[1:]]
    assert not signature_valid(URL, tampered, auth_token="auth-token", presented=good)
    assert not signature_valid(URL.replace("3f0c", "3f0d"), PARAMS, auth_token="auth-token", presented=good)
    assert not signature_valid(URL, PARAMS, auth_token="another-token", presented=good)
    assert not signature_valid(URL, PARAMS, auth_token="", presented=provider_signature(URL, PARAMS, auth_token=""))
    assert not signature_valid(URL, PARAMS, auth_token="auth-token", presented="")
