"""Search results as the API shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from jobchat.conversations.models import Kind
from jobchat.directory.models import User
from jobchat.messages.schemas import MessageOut
from jobchat.search.queries import SearchPage


class SearchConversationOut(BaseModel):
    id: int
    title: str = Field(description="The conversation's title as the caller sees it.")
    kind: Kind


class SearchHitOut(BaseModel):
    message: MessageOut = Field(description="The message as the history shows it.")
    conversation: SearchConversationOut
    snippet: str = Field(
        description="Plain text around the best cluster of matching words (about 200 "
        "characters, cut at word boundaries, with … where text was cut): from the body, or the "
        "subject if only the subject matched."
    )
    highlights: list[tuple[int, int]] = Field(
        description="The matching words' character ranges in `snippet`, as [start, end) "
        "pairs of Python string indices (Unicode code points, not UTF-16 units or bytes)."
    )


class SearchPageOut(BaseModel):
    items: list[SearchHitOut] = Field(description="Best matches first, then newest.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null after the last."
    )

    @classmethod
    def of(cls, page: SearchPage, viewer: User) -> SearchPageOut:
        """The page as ``viewer`` sees it (staff see the messages' deliveries, as in history)."""
        return cls(
            items=[
                SearchHitOut(
                    message=MessageOut.of(hit.message, show_deliveries=viewer.is_staff),
                    conversation=SearchConversationOut(
                        id=hit.conversation_id,
                        title=hit.conversation_title,
                        kind=hit.conversation_kind,
                    ),
                    snippet=hit.snippet,
                    highlights=hit.highlights,
                )
                for hit in page.hits
            ],
            next_cursor=page.next_cursor,
        )
