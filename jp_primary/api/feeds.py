"""Feeds to index servers (API.md ``/v1/feeds``; docs/feeds.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from jp_primary.api import feed_schemas as schemas
from jp_primary.api.deps import Caller, Services
from jp_primary.api.errors import responses
from jp_primary.api.policies import Indexer
from jp_primary.services.feeds import FeedRequest, FeedState

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])
FeedId = Annotated[str, Path(max_length=64, pattern="^[A-Za-z0-9]+$")]


@router.post("", status_code=status.HTTP_201_CREATED, responses=responses(400, 401, 403, 413, 422))
async def subscribe(
    body: schemas.FeedIn, services: Services, caller: Caller = Indexer
) -> schemas.FeedCreatedOut:
    """Subscribe to a feed (push with a destination, pull without)."""
    request = FeedRequest(
        attributes=list(body.attributes),
        conditions=[c.model_dump(exclude_none=True) for c in body.conditions],
        history=body.history,
        continuous=body.continuous,
        destination=body.destination,
        ttl_seconds=body.ttl_seconds,
        notify_removed=body.notify_removed,
    )
    feed = await services.feeds.subscribe(caller, request)
    mode = "push" if feed.destination else "pull"
    return schemas.FeedCreatedOut(feed_id=feed.id, expires_at=feed.expires_at, mode=mode)


@router.get("", responses=responses(401, 403))
async def list_feeds(services: Services, caller: Caller = Indexer) -> list[schemas.FeedOut]:
    """The caller's feeds (an admin's: all)."""
    return [feed_out(state) for state in await services.feeds.list_feeds(caller)]


@router.get("/{feed_id}", responses=responses(401, 403, 404, 422))
async def get_feed(
    feed_id: FeedId, services: Services, caller: Caller = Indexer
) -> schemas.FeedOut:
    """A feed's state: phase, cursor, lag, deliveries, last error, next retry."""
    return feed_out(await services.feeds.state(caller, feed_id))


@router.post("/{feed_id}/refresh", responses=responses(401, 403, 404, 410, 422))
async def refresh(
    feed_id: FeedId, services: Services, caller: Caller = Indexer
) -> schemas.RefreshedOut:
    """Extend the feed's life by its TTL."""
    return schemas.RefreshedOut(expires_at=await services.feeds.refresh(caller, feed_id))


@router.delete(
    "/{feed_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 404, 422)
)
async def cancel(feed_id: FeedId, services: Services, caller: Caller = Indexer) -> Response:
    """Cancel the feed."""
    await services.feeds.cancel(caller, feed_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{feed_id}/changes", responses=responses(400, 401, 403, 404, 409, 410, 422))
async def changes(
    feed_id: FeedId,
    services: Services,
    since: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 200,
    wait: Annotated[float, Query(ge=0, le=60)] = 0,
    caller: Caller = Indexer,
) -> schemas.ChangesOut:
    """Pull mode: the records after ``since`` (long-polls up to ``wait`` seconds)."""
    answer = await services.feeds.changes(caller, feed_id, since, limit, wait)
    return schemas.ChangesOut(
        records=answer.records, next=answer.next, history_done=answer.history_done
    )


def feed_out(state: FeedState) -> schemas.FeedOut:
    feed = state.feed
    return schemas.FeedOut(
        feed_id=feed.id,
        mode="push" if feed.destination else "pull",
        destination=feed.destination,
        attributes=feed.attributes,
        conditions=feed.conditions,
        history=feed.history,
        continuous=feed.continuous,
        notify_removed=feed.notify_removed,
        phase=state.phase,
        snapshot_seq=feed.snapshot_seq,
        cursor_seq=state.head_seq - state.lag_seq,
        head_seq=state.head_seq,
        lag_seq=state.lag_seq,
        lag_seconds=state.lag_seconds,
        batches_sent=feed.acked_batch,
        batches_pending=feed.built_batch - feed.acked_batch,
        created_at=feed.created_at,
        expires_at=feed.expires_at,
        last_delivery_at=feed.last_delivery_at,
        last_error=feed.last_error,
        attempts=feed.attempts,
        next_retry_at=feed.next_attempt_at,
        worker=feed.lease_owner,
    )
