"""The push API: the server's VAPID key, and the caller's devices' subscriptions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from jobchat.auth.deps import CurrentUser, request_credential
from jobchat.auth.queries import credential_live
from jobchat.http_errors import error_responses
from jobchat.inputs import PathId
from jobchat.push.actions import do_subscribe, do_unsubscribe
from jobchat.push.keys import public_key, vapid_key
from jobchat.push.queries import subscriptions_of
from jobchat.push.schemas import KeyOut, SubscriptionIn, SubscriptionList, SubscriptionOut

router = APIRouter(prefix="/api/v1/push", tags=["push"], responses=error_responses(401))


@router.get("/key", response_model=KeyOut)
def get_key(caller: CurrentUser) -> KeyOut:
    """The key to pass to `PushManager.subscribe` as `applicationServerKey`."""
    state = caller.state
    return KeyOut(public_key=public_key(vapid_key(state.db, state.settings, caller.now)))


_SUBSCRIBED: dict[int | str, dict[str, Any]] = {
    200: {"description": "Already subscribed (now the caller's, if it was someone else's)."},
    201: {"description": "Subscribed."},
    **error_responses(403, 422),
}


@router.post("/subscriptions", response_model=SubscriptionOut, responses=_SUBSCRIBED)
def post_subscription(
    body: SubscriptionIn, caller: CurrentUser, request: Request, response: Response
) -> SubscriptionOut:
    """Register this browser's `PushSubscription` (its JSON as is). The endpoint must be
    `https://` on a public address."""
    insecure = caller.state.settings.push_allow_insecure
    with caller.write() as (session, user):
        now = caller.now
        sub, created = do_subscribe(
            session,
            user,
            body,
            now=now,
            allow_insecure=insecure,
            credential_id=request_credential(request, session, now),
        )
        out = SubscriptionOut.of(sub)
    response.status_code = 201 if created else 200
    return out


@router.get("/subscriptions", response_model=SubscriptionList)
def get_subscriptions(caller: CurrentUser) -> SubscriptionList:
    with caller.read() as (session, user):
        now = caller.now
        return SubscriptionList(
            items=[
                SubscriptionOut.of(s)
                for s in subscriptions_of(session, user.id)
                # One whose sign-in was revoked or ran out is never pushed to: not listed.
                if s.credential_id is None or credential_live(session, s.credential_id, now)
            ]
        )


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404),
)
def delete_subscription(subscription_id: PathId, caller: CurrentUser) -> Response:
    with caller.write() as (session, user):
        do_unsubscribe(session, user, subscription_id)
    return Response(status_code=204)
