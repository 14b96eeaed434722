"""subscriber addresses take the ASCII form of their domain

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 08:00:00.000000

An address used to be stored with its domain in Unicode (`a@bücher.de`): the mail went out as
`a@=?utf-8?q?b=C3=BCcher?=.de`, which no server delivers, and `a@xn--bcher-kva.de`, the same
mailbox, could be stored again as a second subscriber. From now on the domain is stored in its ASCII
(IDNA) form, which is what mail is sent to, and email_key (the unique key) is derived from it.

This rewrites every address whose domain is not ASCII. Nothing is merged: when the ASCII key is
already taken by another row (the same mailbox signed up twice), the row is left exactly as it is
and a warning names both ids. Rows are taken oldest first, so if two Unicode spellings meet, the
older one is rewritten and the newer one skipped. Merging two subscribers means choosing whose
repositories, state and history win, which is the operator's call, not a migration's; both rows keep
working as before until then (the one left in Unicode still cannot be delivered to).
"""
import logging

import idna
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

subscriber = sa.table('subscriber', sa.column('id', sa.Integer), sa.column('email', sa.String),
                      sa.column('email_key', sa.String))


def _ascii_domain(email):
    """email with its domain in ASCII (UTS 46 then IDNA 2008, as email-validator does), or None."""
    local, at, domain = email.rpartition('@')
    if not at or domain.isascii():
        return None
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except (idna.IDNAError, UnicodeError):
        return None


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(subscriber.c.id, subscriber.c.email, subscriber.c.email_key)
                              .order_by(subscriber.c.id)).all()
    owner = {row.email_key: row.id for row in rows}
    for row in rows:
        email = _ascii_domain(row.email)
        if email is None:
            if not row.email.rpartition('@')[2].isascii():
                log.warning("subscriber %s: the domain of its address is not a valid IDNA name; left as it is",
                            row.id)
            continue
        key = email.casefold()
        if owner.get(key, row.id) != row.id:
            log.warning("subscriber %s is the same mailbox as subscriber %s; not rewritten and not merged: "
                        "merge or delete one of them by hand", row.id, owner[key])
            continue
        connection.execute(subscriber.update().where(subscriber.c.id == row.id).values(email=email, email_key=key))
        del owner[row.email_key]
        owner[key] = row.id


def downgrade() -> None:
    # Nothing to undo: an ASCII domain is as good an address to the code before this revision, which
    # compared case-folded strings; only a second signup of the same mailbox could slip through again.
    pass
