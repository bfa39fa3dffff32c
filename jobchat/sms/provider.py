"""Handing a text to the outside world: Twilio (its official client), or the log for developers."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from typing import Protocol

from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

log = logging.getLogger("jobchat.sms")

TWILIO_API_URL = "https://api.twilio.com"


@dataclass(frozen=True)
class SentSms:
    provider_id: str  # Twilio's MessageSid
    status: str  # as the provider answered: "queued", "accepted", "sending", "sent", ...


class SmsRejected(Exception):
    """The provider refused the text for good (a 4xx answer): never retried."""

    def __init__(self, message: str, *, code: str | None, status: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # Twilio's error code, e.g. "21211" (not a valid phone number)
        self.status = status  # the HTTP status of the answer


class SmsProvider(Protocol):
    name: str

    async def send(self, *, to: str, body: str, status_callback: str | None) -> SentSms:
        """Hand the text over; raise SmsRejected when the provider will never take it, any other
        exception when a later attempt may succeed."""


@dataclass(frozen=True)
class SmsSettings:
    provider: str | None = None  # "twilio", "console", or None: no SMS at all
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_url: str = TWILIO_API_URL
    timeout: float = 30.0


class TwilioProvider:
    """Sends through Twilio's Messages API with the official client.

    Each send opens its own HTTP session and closes it before returning: a worker sends a text
    now and then, and a session shared across sends would have to be closed by whoever owns the
    provider, on every path out."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        api_url: str = TWILIO_API_URL,
        timeout: float,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        if not from_number and not messaging_service_sid:
            raise ValueError("Twilio needs a From number or a Messaging Service SID")
        if timeout <= 0:
            raise ValueError("the Twilio timeout must be positive")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number or None
        self.messaging_service_sid = messaging_service_sid or None
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout

    async def send(self, *, to: str, body: str, status_callback: str | None) -> SentSms:
        try:
            # AsyncTwilioHttpClient ignores its own timeout (it hands aiohttp the per-request
            # one, which messages.create_async never sets, and None there means no limit at
            # all), so the whole exchange is bounded here.
            async with asyncio.timeout(self.timeout), AsyncTwilioHttpClient() as http:
                message = await self._client(http).messages.create_async(
                    to=to,
                    from_=self.from_number,
                    messaging_service_sid=self.messaging_service_sid,
                    body=body,
                    status_callback=status_callback,
                )
        except TimeoutError as exc:
            raise TimeoutError(f"Twilio did not answer within {self.timeout:g} s") from exc
        except (TwilioRestException, TwilioServiceException) as exc:
            status = exc.status if isinstance(exc.status, int) else None
            # 429 is Twilio asking us to slow down, and 5xx its own trouble: both are worth
            # another attempt later. Any other 4xx is about this text and will not change.
            if status is not None and 400 <= status < 500 and status != 429:
                raise SmsRejected(
                    _describe(exc),
                    code=None if exc.code is None else str(exc.code),
                    status=status,
                ) from exc
            raise
        sid, status = message.sid, message.status
        if not isinstance(sid, str) or not sid:
            raise RuntimeError("Twilio accepted the text but answered without a message SID")
        return SentSms(provider_id=sid, status=str(status or "queued"))

    def _client(self, http: AsyncTwilioHttpClient) -> Client:
        client = Client(self.account_sid, self.auth_token, http_client=http)
        # The client would otherwise take TWILIO_REGION / TWILIO_EDGE from the environment and
        # rewrite the host of every URL with them (127.0.0.1 becomes 127.<edge>.<region>.1):
        # the one place the API lives is api_url, which may name a regional host itself.
        client.region = None
        client.edge = None
        # Messages live on the "api" domain, whose base URL is a plain attribute that every
        # request's URL is built from (Domain.absolute_url).
        client.api.base_url = self.api_url
        return client


def _describe(exc: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(exc, TwilioServiceException):
        return str(exc.detail or exc.title)
    return str(exc.msg)


@dataclass(frozen=True)
class ConsoleSms:
    provider_id: str
    to: str
    body: str
    status_callback: str | None


class ConsoleProvider:
    """No provider to send through (development): the text is written to the log instead."""

    name = "console"

    def __init__(self) -> None:
        self.sent: list[ConsoleSms] = []
        self._ids = itertools.count(1)

    async def send(self, *, to: str, body: str, status_callback: str | None) -> SentSms:
        provider_id = f"console-{next(self._ids)}"
        log.info(
            "SMS not sent (JOBCHAT_SMS_PROVIDER is console): %s to %s: %r", provider_id, to, body
        )
        self.sent.append(ConsoleSms(provider_id, to, body, status_callback))
        del self.sent[:-100]  # keep the last few for a developer poking around, not all
        return SentSms(provider_id=provider_id, status="sent")


def provider_for(settings: SmsSettings) -> SmsProvider | None:
    """The provider the settings choose, or None when SMS is off."""
    choice = (settings.provider or "").strip().lower()
    if not choice:
        return None
    if choice == "console":
        return ConsoleProvider()
    if choice != "twilio":
        raise ValueError(
            f"JOBCHAT_SMS_PROVIDER must be twilio or console, not {settings.provider!r}"
        )
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise ValueError(
            "JOBCHAT_SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    if not settings.twilio_from_number and not settings.twilio_messaging_service_sid:
        raise ValueError(
            "JOBCHAT_SMS_PROVIDER=twilio needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"
        )
    return TwilioProvider(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        api_url=settings.twilio_api_url,
        timeout=settings.timeout,
    )
