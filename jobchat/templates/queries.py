"""Which templates a staff member can see: their own, and those shared in their organisation."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from jobchat.directory.models import Role, User
from jobchat.templates.models import Template


def _visible(user: User) -> ColumnElement[bool]:
    own = Template.author_id == user.id
    if user.organization_id is None:
        return own
    return or_(
        own, (Template.shared.is_(True)) & (Template.organization_id == user.organization_id)
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
    return (
        session.scalar(
            select(func.count()).select_from(Template).where(Template.author_id == user.id)
        )
        or 0
    )
