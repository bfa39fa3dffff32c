"""Which templates a staff member can see: their own, and those shared in their organisation."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from jobchat.directory.models import Role, User
from jobchat.templates.models import Template


def _visible(user: User) -> ColumnElement[bool]:
    """Its author always sees a template (it is theirs, wherever they work now). The rest of
    an organisation sees a shared one only while its author is still in that organisation: an
    author who moved on no longer speaks for it, and their words must not keep going out in
    its colleagues' messages (nor be edited there under their name). Should they come back,
    it is shared again."""
    own = Template.author_id == user.id
    if user.organization_id is None:
        return own
    org = user.organization_id
    return or_(
        own,
        Template.shared.is_(True)
        & (Template.organization_id == org)
        & Template.author.has(User.organization_id == org),
    )


def visible_template(session: Session, user: User, template_id: int) -> Template | None:
    if not user.is_staff:
        return None
    return session.scalars(
        select(Template).where(Template.id == template_id, _visible(user))
    ).one_or_none()


def visible_templates(session: Session, user: User) -> list[Template]:
    """Shared and own, by name (then id, so two of the same name keep their order)."""
    if not user.is_staff:
        return []
    return list(
        session.scalars(select(Template).where(_visible(user)).order_by(Template.name, Template.id))
    )


def may_edit(user: User, template: Template) -> bool:
    """The author always; an admin of the organisation for a shared one (a personal template
    stays its author's alone)."""
    if template.author_id == user.id:
        return True
    return (
        template.shared
        and user.is_staff
        and user.role == Role.admin
        and user.organization_id == template.organization_id
    )


def own_template_count(session: Session, user: User) -> int:
    """Counted inside the write that adds one: writes take turns (one at a time, across
    processes too), so two saves cannot both see 499 and both insert."""
    return (
        session.scalar(
            select(func.count()).select_from(Template).where(Template.author_id == user.id)
        )
        or 0
    )
