"""Sending a text: TwilioProvider against a loopback server that answers as Twilio does (the
request it makes, the answers it maps to SmsRejected or to a retry, its timeout), the console
provider developers use, and the settings that choose between them."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import warnings
from collections.abc import Iterator

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from jobchat.sms.provider import (
    ConsoleProvider,
    ConsoleSms,
    SentSms,
    SmsRejected,
    SmsSettings,
    TwilioProvider,
    provider_for,
)
from tests.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    MESSAGING_SERVICE_SID,
    TwilioServer,
    inbound_sms_form,
    sign,
    status_callback_form,
)

# twilio 9.13 still hands aiohttp basic auth the way aiohttp 3.14 deprecates.
pytestmark = [
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

TO = "+14155550123"
CALLBACK = "https://jobchat.example/api/v1/sms/status"


@pytest.fixture
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer() as server:
        yield server


def make_provider(
    server: TwilioServer,
    *,
    auth_token: str = AUTH_TOKEN,
    from_number: str | None = FROM_NUMBER,
    messaging_service_sid: str | None = None,
    timeout: float = 5,
) -> TwilioProvider:
    return TwilioProvider(
        account_sid=ACCOUNT_SID,
        auth_token=auth_token,
        from_number=from_number,
        messaging_service_sid=messaging_service_sid,
        api_url=server.url,
        timeout=timeout,
    )


def send(
    provider: TwilioProvider, *, to: str = TO, body: str = "Your interview is at 10."
) -> SentSms:
    return asyncio.run(provider.send(to=to, body=body, status_callback=CALLBACK))


def test_a_text_arrives_at_the_messages_resource_with_basic_auth_and_its_fields(
    twilio: TwilioServer,
) -> None:
    sent = send(make_provider(twilio))

    assert re.fullmatch(r"SM[0-9a-f]{32}", sent.provider_id)
    assert sent == SentSms(provider_id=twilio.messages[0]["sid"], status="queued")
    [request] = twilio.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.basic_auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("twilio-python/9.13.0 ")
    assert request.form == {
        "To": TO,
        "From": FROM_NUMBER,
        "Body": "Your interview is at 10.",
        "StatusCallback": CALLBACK,
    }


def test_the_message_resource_is_twilios(twilio: TwilioServer) -> None:
    send(make_provider(twilio), body="Café at 10? " + "x" * 150)

    [message] = twilio.messages
    assert message["status"] == "queued"
    assert message["to"] == TO
    assert message["from"] == FROM_NUMBER
    assert message["num_segments"] == "2"
    assert message["direction"] == "outbound-api"
    assert message["api_version"] == "2010-04-01"
    assert message["price"] is None
    assert message["error_code"] is None
    assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message['sid']}.json"
    assert re.fullmatch(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
        r" \d{4} \d\d:\d\d:\d\d \+0000",
        message["date_created"],
    )


def test_a_messaging_service_sends_instead_of_a_from_number(twilio: TwilioServer) -> None:
    provider = make_provider(twilio, from_number=None, messaging_service_sid=MESSAGING_SERVICE_SID)

    sent = asyncio.run(provider.send(to=TO, body="Hello", status_callback=None))

    # Twilio answers "accepted" until the service has picked a sender.
    assert sent.status == "accepted"
    assert twilio.requests[0].form == {
        "To": TO,
        "MessagingServiceSid": MESSAGING_SERVICE_SID,
        "Body": "Hello",
    }


def test_twilio_region_and_edge_in_the_environment_do_not_move_the_api_url(
    twilio: TwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")

    send(make_provider(twilio))

    assert len(twilio.requests) == 1


def test_an_invalid_number_is_rejected_for_good_with_twilios_code(twilio: TwilioServer) -> None:
    with pytest.raises(SmsRejected) as caught:
        send(make_provider(twilio), to="555-0123")

    assert caught.value.code == "21211"
    assert caught.value.status == 400
    assert caught.value.message == (
        "Unable to create record: The 'To' number 555-0123 is not a valid phone number."
    )
    assert str(caught.value) == caught.value.message


def test_a_chosen_4xx_is_rejected_with_its_code(twilio: TwilioServer) -> None:
    twilio.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")

    with pytest.raises(SmsRejected) as caught:
        send(make_provider(twilio))

    assert (caught.value.code, caught.value.status) == ("21610", 400)
    assert twilio.messages == []


def test_a_wrong_auth_token_is_rejected_with_20003(twilio: TwilioServer) -> None:
    with pytest.raises(SmsRejected) as caught:
        send(make_provider(twilio, auth_token="0" * 32))

    assert (caught.value.code, caught.value.status) == ("20003", 401)
    assert caught.value.message == "Unable to create record: Authenticate"


def test_server_errors_are_plain_exceptions_to_retry_and_a_later_attempt_succeeds(
    twilio: TwilioServer,
) -> None:
    twilio.fail_next(2, status=500)
    provider = make_provider(twilio)

    for _ in range(2):
        # Twilio's own exception, not SmsRejected: the jobs worker tries again later.
        with pytest.raises(TwilioRestException) as caught:
            send(provider)
        assert not isinstance(caught.value, SmsRejected)
        assert (caught.value.status, caught.value.code) == (500, 20500)
        assert caught.value.msg == "Unable to create record: An internal server error has occurred"
    sent = send(provider)

    assert sent.provider_id == twilio.messages[0]["sid"]
    assert len(twilio.requests) == 3


def test_too_many_requests_is_retried_not_rejected(twilio: TwilioServer) -> None:
    twilio.fail_next(status=429)

    with pytest.raises(TwilioRestException) as caught:
        send(make_provider(twilio))

    assert not isinstance(caught.value, SmsRejected)
    assert (caught.value.status, caught.value.code) == (429, 20429)


def test_a_hanging_provider_times_out(twilio: TwilioServer) -> None:
    twilio.hang = True
    started = time.monotonic()

    with pytest.raises(TimeoutError, match="Twilio did not answer within 1 s"):
        send(make_provider(twilio, timeout=1))

    assert 1 <= time.monotonic() - started < 2
    assert len(twilio.requests) == 1  # it arrived, and got no answer


def test_nobody_listening_is_a_plain_exception(twilio: TwilioServer) -> None:
    provider = make_provider(twilio)
    twilio.stop()

    with pytest.raises(
        aiohttp.ClientConnectorError, match=re.escape("Cannot connect to host 127.0.0.1:")
    ):
        send(provider)


def test_no_http_session_is_left_open(twilio: TwilioServer) -> None:
    twilio.fail_next(status=500)
    provider = make_provider(twilio)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TwilioRestException):
            send(provider)
        send(provider)
        twilio.hang = True
        with pytest.raises(TimeoutError):
            send(make_provider(twilio, timeout=0.2))
        gc.collect()

    assert [str(w.message) for w in caught if "nclosed" in str(w.message)] == []


def test_the_console_provider_logs_instead_of_sending(caplog: pytest.LogCaptureFixture) -> None:
    provider = ConsoleProvider()
    caplog.set_level(logging.INFO, logger="jobchat.sms")

    first = asyncio.run(provider.send(to=TO, body="Hello", status_callback=None))
    second = asyncio.run(provider.send(to=TO, body="Again", status_callback=CALLBACK))

    assert first == SentSms(provider_id="console-1", status="sent")
    assert second == SentSms(provider_id="console-2", status="sent")
    assert provider.name == "console"
    assert provider.sent == [
        ConsoleSms("console-1", TO, "Hello", None),
        ConsoleSms("console-2", TO, "Again", CALLBACK),
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "jobchat.sms"] == [
        f"SMS not sent (JOBCHAT_SMS_PROVIDER is console): console-1 to {TO}: 'Hello'",
        f"SMS not sent (JOBCHAT_SMS_PROVIDER is console): console-2 to {TO}: 'Again'",
    ]


def test_the_console_provider_keeps_the_last_100() -> None:
    provider = ConsoleProvider()

    async def send_many() -> None:
        for n in range(150):
            await provider.send(to=TO, body=str(n), status_callback=None)

    asyncio.run(send_many())

    assert len(provider.sent) == 100
    assert (provider.sent[0].body, provider.sent[-1].provider_id) == ("50", "console-150")


TWILIO = SmsSettings(
    provider="twilio",
    twilio_account_sid=ACCOUNT_SID,
    twilio_auth_token=AUTH_TOKEN,
    twilio_from_number=FROM_NUMBER,
    twilio_api_url="http://127.0.0.1:9/",
    timeout=7,
)


def test_provider_for_builds_what_the_settings_choose() -> None:
    assert provider_for(SmsSettings()) is None
    assert provider_for(SmsSettings(provider="")) is None
    assert isinstance(provider_for(SmsSettings(provider="console")), ConsoleProvider)
    twilio = provider_for(TWILIO)
    assert isinstance(twilio, TwilioProvider)
    assert twilio.name == "twilio"
    assert (twilio.account_sid, twilio.auth_token) == (ACCOUNT_SID, AUTH_TOKEN)
    assert (twilio.from_number, twilio.messaging_service_sid) == (FROM_NUMBER, None)
    assert (twilio.api_url, twilio.timeout) == ("http://127.0.0.1:9", 7)


def test_provider_for_defaults_to_twilios_own_api() -> None:
    twilio = provider_for(
        SmsSettings(
            provider="Twilio",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_messaging_service_sid=MESSAGING_SERVICE_SID,
        )
    )
    assert isinstance(twilio, TwilioProvider)
    assert twilio.api_url == "https://api.twilio.com"
    assert (twilio.from_number, twilio.messaging_service_sid) == (None, MESSAGING_SERVICE_SID)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (
            SmsSettings(provider="twilio", twilio_auth_token=AUTH_TOKEN, twilio_from_number=TO),
            "JOBCHAT_SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        ),
        (
            SmsSettings(provider="twilio", twilio_account_sid=ACCOUNT_SID, twilio_from_number=TO),
            "JOBCHAT_SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        ),
        (
            SmsSettings(
                provider="twilio", twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN
            ),
            "JOBCHAT_SMS_PROVIDER=twilio needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID",
        ),
        (
            SmsSettings(provider="nexmo"),
            "JOBCHAT_SMS_PROVIDER must be twilio or console, not 'nexmo'",
        ),
    ],
)
def test_provider_for_says_what_is_missing(settings: SmsSettings, error: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(error)}$"):
        provider_for(settings)


def test_a_webhook_signature_is_twilios() -> None:
    # The example from Twilio's security documentation.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }

    assert sign(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_the_webhook_forms_are_signed_as_twilio_signs_them(twilio: TwilioServer) -> None:
    sent = send(make_provider(twilio))
    url = "https://jobchat.example/api/v1/sms/status"

    form = status_callback_form(twilio.messages[0], "undelivered", error_code=30003)

    assert form == {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "ErrorCode": "30003",
        "From": FROM_NUMBER,
        "MessageSid": sent.provider_id,
        "MessageStatus": "undelivered",
        "SmsSid": sent.provider_id,
        "SmsStatus": "undelivered",
        "To": TO,
    }
    assert RequestValidator(AUTH_TOKEN).validate(url, form, sign(url, form))
    assert not RequestValidator(AUTH_TOKEN).validate(url, form, sign(url, form, "0" * 32))
    reply = inbound_sms_form(from_number=TO, body="STOP")
    assert (reply["From"], reply["To"], reply["Body"], reply["NumSegments"]) == (
        TO,
        FROM_NUMBER,
        "STOP",
        "1",
    )
    assert reply["MessageSid"] == reply["SmsSid"] and reply["SmsStatus"] == "received"
