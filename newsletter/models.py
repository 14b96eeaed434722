"""Tables. Life cycles are explicit enums, documented where they are defined."""
from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls, name):
    # Stored as plain strings with a CHECK constraint: portable between SQLite and PostgreSQL,
    # and adding a state is a constraint change, not a type migration.
    return SAEnum(cls, name=name, native_enum=False, create_constraint=True, length=20,
                  values_callable=lambda e: [m.value for m in e], validate_strings=True)


class SubscriberStatus(str, enum.Enum):
    """pending → confirmed → unsubscribed; suppressed is set by bounces and complaints.

    pending: signed up, confirmation link not yet used; receives nothing but the confirmation.
    confirmed: receives the daily email (unless paused).
    unsubscribed: asked to stop; receives nothing until they confirm a new subscription.
    suppressed: hard bounce or spam complaint; never sent to again.
    """

    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"


class Threshold(str, enum.Enum):
    """The lowest importance a subscriber wants for a repository; low means everything."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return {"high": 3, "medium": 2, "low": 1}[self.value]


class Subscriber(Base):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # email keeps the address as normalized by email-validator (domain lower-cased);
    # email_key is its case-folded form and carries the uniqueness.
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    email_key: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    status: Mapped[SubscriberStatus] = mapped_column(_enum(SubscriberStatus, "subscriber_status"),
                                                     nullable=False, default=SubscriberStatus.PENDING)
    language: Mapped[str] = mapped_column(String(5), nullable=False, default="en")
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    send_empty: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suppressed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suppressed_reason: Mapped[str | None] = mapped_column(String(200))

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", order_by="Subscription.repo")

    @property
    def receives_email(self) -> bool:
        return self.status is SubscriberStatus.CONFIRMED and not self.paused

    def __repr__(self) -> str:
        return f"<Subscriber {self.id} {self.status.value}>"


class Subscription(Base):
    """One subscriber watching one repository at one threshold."""

    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("subscriber_id", "repo", name="uq_subscription_subscriber_repo"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True)
    repo: Mapped[str] = mapped_column(String(140), nullable=False, index=True)  # owner/name, lower-cased
    threshold: Mapped[Threshold] = mapped_column(_enum(Threshold, "threshold"), nullable=False, default=Threshold.MEDIUM)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")


class SignupRequest(Base):
    """A subscription asked for and not yet confirmed.

    The confirmation link names this row, so asking again for an existing address changes nothing
    about that subscriber until the link is used.
    """

    __tablename__ = "signup_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True)
    repos: Mapped[list] = mapped_column(JSON, nullable=False)  # [[repo, threshold], ...]
    language: Mapped[str] = mapped_column(String(5), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(20), nullable=False, default="web")  # web | cli
    note: Mapped[str | None] = mapped_column(Text)

    subscriber: Mapped[Subscriber] = relationship()
