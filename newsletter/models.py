"""Tables. Life cycles are explicit enums, documented where they are defined."""
from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime: SQLite hands them back without their zone, and
    every timestamp stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _enum(cls: type[enum.Enum], name: str) -> SAEnum:
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


class Frequency(str, enum.Enum):
    """How often a subscriber gets an email: every day, or once a week on their weekday."""

    DAILY = "daily"
    WEEKLY = "weekly"


class Subscriber(Base):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # email is the address with its domain in ASCII (IDNA) form, as normalize_email returns it: what
    # mail goes to. email_key is its case-folded form and carries the uniqueness.
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    email_key: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    status: Mapped[SubscriberStatus] = mapped_column(_enum(SubscriberStatus, "subscriber_status"),
                                                     nullable=False, default=SubscriberStatus.PENDING)
    language: Mapped[str] = mapped_column(String(5), nullable=False, default="en")
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    send_empty: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Their clock (clock.py): the email goes at `hour` o'clock in `timezone` (an IANA name),
    # every day, or on `weekday` (0 Monday .. 6 Sunday) for a weekly email.
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC", server_default="UTC")
    hour: Mapped[int] = mapped_column(Integer, nullable=False, default=8, server_default="8")
    frequency: Mapped[Frequency] = mapped_column(_enum(Frequency, "frequency"), nullable=False,
                                                 default=Frequency.DAILY, server_default="daily")
    weekday: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # When the planner next needs to look at this subscriber: their next slot (or None: recompute, set
    # whenever the clock changes). Only an index of the planner's work; the unique keys of Delivery
    # are what make each email go once.
    next_slot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
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
    repo: Mapped[str] = mapped_column(String(500), nullable=False, index=True)  # owner/name, lower-cased
    threshold: Mapped[Threshold] = mapped_column(_enum(Threshold, "threshold"), nullable=False, default=Threshold.MEDIUM)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    # Set when the operator subscribed someone (`newsletter subscribe`): only such a subscription may
    # name a private repository (a private GitHub repository, or a local one).
    granted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")


class SignupRequest(Base):
    """A subscription asked for and not yet confirmed.

    The confirmation link names this row, so asking again for an existing address changes nothing
    about that subscriber until the link is used.
    """

    __tablename__ = "signup_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False, index=True)
    repos: Mapped[list[list[str]]] = mapped_column(JSON, nullable=False)  # [[repo, threshold], ...]
    language: Mapped[str] = mapped_column(String(5), nullable=False)
    # The clock asked for ({"timezone", "hour", "frequency", "weekday"}); applied on confirmation.
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(20), nullable=False, default="web")  # web | cli
    note: Mapped[str | None] = mapped_column(Text)

    subscriber: Mapped[Subscriber] = relationship()


# The daily analysis ---------------------------------------------------------------------------

class Repository(Base):
    """A watched repository (owner/name on GitHub, or a local git path) and its watermark.

    The watermark is the head of the default branch that the last daily report covered; the next
    report takes every commit reachable from the new head and not from it.
    """

    __tablename__ = "repository"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(500), nullable=False, unique=True)
    default_branch: Mapped[str | None] = mapped_column(String(255))
    watermark_sha: Mapped[str | None] = mapped_column(String(64))
    watermark_date: Mapped[date | None] = mapped_column(Date)
    # Private repositories (GitHub's `private`, and local ones unless PUBLIC_LOCAL_REPOSITORIES) have
    # no public archive and reach only subscribers the operator granted them to.
    private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    last_error: Mapped[str | None] = mapped_column(Text)
    # errors.FAILURE_KINDS of last_error: what readers are told (never the error text).
    last_error_kind: Mapped[str | None] = mapped_column(String(20))
    # A fetch in progress since then (reports/run.collect): set and committed when it starts, cleared
    # when its commits are stored. Windows planned meanwhile end just before it (reports/window.cutoff).
    collecting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class FetchedCommit(Base):
    """A commit as fetched and stored: `record` is its CommitRecord as JSON (patches capped), kept for
    re-analysis, and `report_date` the one report it belongs to."""

    __tablename__ = "repo_commit"
    __table_args__ = (UniqueConstraint("repository_id", "sha", name="uq_commit_repository_sha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"), nullable=False)
    sha: Mapped[str] = mapped_column(String(64), nullable=False)
    committed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    record: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # The report day this commit belongs to; set once, so no commit appears in two reports.
    report_date: Mapped[date | None] = mapped_column(Date, index=True)
    # When the service first saw it (the fetch that stored it): what a reader's email window selects on,
    # so a late push with an old commit date still reaches the next email, and no email repeats it.
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow,
                                                    index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class CommitAnalysis(Base):
    """One commit analysed by one model and prompt version, in every language it was asked for:
    computed once, reused; a language asked for later adds its texts to the same row.

    `analysis` is an AnalysisSet as JSON: one change type and importance, texts per language.
    """

    __tablename__ = "commit_analysis"
    __table_args__ = (UniqueConstraint("commit_id", "model", "prompt_version", name="uq_analysis_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    commit_id: Mapped[int] = mapped_column(ForeignKey("repo_commit.id", ondelete="CASCADE"), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    prompt_version: Mapped[str] = mapped_column(String(20), nullable=False)
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    fallback: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class ReportStatus(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"


class Report(Base):
    """The daily report of one repository in one language, computed once and shared by every subscriber."""

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("repository_id", "date", "language", name="uq_report_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"), nullable=False)
    date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    language: Mapped[str] = mapped_column(String(5), nullable=False)
    status: Mapped[ReportStatus] = mapped_column(_enum(ReportStatus, "report_status"), nullable=False)
    analyzer: Mapped[str] = mapped_column(String(200), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)  # report_render.render_json
    markdown: Mapped[str] = mapped_column(Text, nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    high: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    medium: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    low: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # total counts the day's commits; merges are listed apart and never counted in it.
    merges: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    unanalyzed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    repository: Mapped[Repository] = relationship()

    @property
    def failed(self) -> bool:
        return self.status is ReportStatus.FAILED

    def counts(self) -> dict[str, int]:
        """Commits in total and per group, from the count columns (no need to load the data)."""
        return {"total": self.total, "high": self.high, "medium": self.medium, "low": self.low,
                "unanalyzed": self.unanalyzed, "merge": self.merges}


class RunStatus(str, enum.Enum):
    """running → done, or running → failed → running (resumed) → done.

    running: repository jobs are at work; heartbeat_at moves on with each finished repository. A
        running run whose heartbeat is older than its lease is stale and is resumed like a failed one.
    failed: the run stopped before every repository had its report (a crash, a lost database or
        Redis connection); a rerun resumes it, keeping every report already built.
    done: every repository has its report for the day (a failed fetch has a failed report); the
        day's emails may go.
    """

    RUNNING = "running"
    FAILED = "failed"
    DONE = "done"


class DailyRun(Base):
    """One row per report date: the guard that makes a second trigger for the same day do nothing.

    Kept in the database because RQ forgets finished job ids after their result TTL and two
    `rq cron` processes may both enqueue.
    """

    __tablename__ = "daily_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[date] = mapped_column(Date, nullable=False, unique=True)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), nullable=False, default=RunStatus.RUNNING)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)  # cron | manual
    backfill: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    error: Mapped[str | None] = mapped_column(Text)  # why the last attempt failed
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IngestRun(Base):
    """One hourly ingestion (INGEST_CRON): fetch and analyse every watched repository's new commits.

    due_at is the INGEST_CRON fire time it serves, unique, so a second tick for the same fire does nothing.
    """

    __tablename__ = "ingest_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, unique=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    repositories: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    new_commits: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RepoRunStatus(str, enum.Enum):
    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"


class RepoRun(Base):
    """One repository's part of a daily run."""

    __tablename__ = "repo_run"
    __table_args__ = (UniqueConstraint("run_id", "repository_id", name="uq_repo_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("daily_run.id", ondelete="CASCADE"), nullable=False)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[RepoRunStatus] = mapped_column(_enum(RepoRunStatus, "repo_run_status"), nullable=False,
                                                  default=RepoRunStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    new_commits: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    github_requests: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    llm_calls: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    repository: Mapped[Repository] = relationship()
    run: Mapped[DailyRun] = relationship()


# Delivery -------------------------------------------------------------------------------------

class DeliveryStatus(str, enum.Enum):
    """pending → sending → sent | failed; skipped when there is nothing to send.

    pending: created by the fan-out, not yet handed to a mail backend.
    sending: claimed by a batch job that is handing it to the backend right now.
    sent: the backend accepted it. failed: the backend refused it for good (error says why).
    skipped: nothing at or above the subscriber's thresholds, or the subscriber stopped receiving.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class Delivery(Base):
    """One subscriber's email at one of their slots: the unique keys make every send happen once.

    slot: the instant of the subscriber's delivery hour this email is for (clock.py);
    date: that instant's calendar date in the subscriber's zone (one email per local day at most),
        also the namespace of the fan-out's batch numbers.
    window_start, window_end: the email holds the commits first seen in (window_start, window_end];
        window_end is the instant the email was planned, and the next email's window starts there.
    """

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("subscriber_id", "date", name="uq_delivery_subscriber_date"),
                      UniqueConstraint("subscriber_id", "slot", name="uq_delivery_subscriber_slot"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), nullable=False)
    date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    slot: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"), nullable=False,
                                                   default=DeliveryStatus.PENDING, index=True)
    batch: Mapped[int | None] = mapped_column(Integer)  # fan-out batch number within the date
    # Equal for subscribers with the same language, repositories and thresholds: batches keep them together.
    content_key: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    claimed_by: Mapped[str | None] = mapped_column(String(300))  # host:pid of the job handing it over
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # A pending row after a transient failure: not to be sent again before this time.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    subscriber: Mapped[Subscriber] = relationship()


class WebhookEvent(Base):
    """A mail provider event already handled; the unique event id makes handling idempotent."""

    __tablename__ = "webhook_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20), nullable=False, default="sendgrid")
    event_id: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))
    delivery_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
