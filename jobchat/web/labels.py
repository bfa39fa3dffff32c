"""Words the pages use for stored values."""

from __future__ import annotations

from jobchat.conversations.schemas import ConversationOut
from jobchat.directory.models import Stage, User

# A stage as staff read it.
STAGE_WORDS = {
    Stage.prospect: "Prospect",
    Stage.applied: "Applied",
    Stage.screening: "Screening",
    Stage.cv_review: "CV review",
    Stage.interview: "Interview",
    Stage.offer: "Offer",
    Stage.offer_accepted: "Offer accepted",
    Stage.hired: "Hired",
    Stage.rejected: "Rejected",
    Stage.withdrawn: "Withdrawn",
}

# A stage as the candidate reads it: about them, not about the pipeline.
CANDIDATE_STAGE_WORDS = {
    **STAGE_WORDS,
    Stage.prospect: "Shortlisted",
    Stage.screening: "Being screened",
    Stage.cv_review: "CV under review",
    Stage.offer: "Offer made",
    Stage.rejected: "Not selected",
}


def conversation_title(conversation: ConversationOut, me: User) -> str:
    """A conversation's name as `me` reads it on the pages (the API's `title` stays as it is)."""
    return conversation.title
