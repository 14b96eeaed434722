"""The subscriber site: subscribe, confirm, preferences, unsubscribe, health. Views stay thin."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

import redis
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..clock import WEEKDAYS, Clock, clock_of, describe
from ..config import mask_tokens
from ..db import Database
from ..delivery.confirmations import send_confirmation
from ..delivery.mailers import make_mailer
from ..errors import InvalidToken
from ..i18n import LANGUAGES, t
from ..models import Delivery, SignupRequest, Subscriber, SubscriberStatus
from ..subscribers import links, subscriptions
from ..subscribers.repositories import RepositoryCheck
from ..subscribers.smtputf8 import Smtputf8Support
from ..subscribers.validation import display_email, parse_schedule
from .extensions import csrf, limiter
from .forms import ButtonForm, PreferencesForm, SubscribeForm, clock_choices, threshold_choices
from .ratelimit import spend_submission
from .sample import sample_commits

log = logging.getLogger(__name__)
bp = Blueprint("web", __name__, static_folder="static", static_url_path="/static")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def db() -> Session:
    """The request's session: the one the Database's scoped session hands this thread."""
    database: Database = current_app.extensions["db"]
    return database.session()


def _confirm_limit() -> str:
    limit: str = current_app.config["RATELIMIT_CONFIRM"]
    return limit


def _ratelimit_off() -> bool:
    return not current_app.config["RATELIMIT_ENABLED"]


def repository_check() -> RepositoryCheck:
    """The app's repository check (its answers are kept per process)."""
    check: RepositoryCheck = current_app.extensions["repository_check"]
    return check


def smtputf8() -> Smtputf8Support:
    """The app's answer to whether the mail backend takes non-ASCII local parts (kept per process)."""
    support: Smtputf8Support = current_app.extensions["smtputf8"]
    return support


@bp.before_app_request
def pick_language() -> None:
    """?lang= wins, then the browser's Accept-Language; pages for a subscriber use theirs."""
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        g.lang = asked
    else:
        g.lang = request.accept_languages.best_match(["en", "zh"], default="en")


@bp.after_app_request
def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # Links carry tokens: never leak them to another site through the Referer header.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.config["BASE_URL"].startswith("https://"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.view_args and "token" in request.view_args:
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def template_helpers() -> dict[str, Any]:
    lang = getattr(g, "lang", "en")
    return {"_": lambda key, **kw: t(key, lang, **kw), "lang": lang, "languages": LANGUAGES,
            "threshold_choices": threshold_choices(lang), "clock_choices": lambda: clock_choices(lang)}


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("web/error.html", status=status, message=message), status


def init_error_pages(app: Flask) -> None:
    """Error pages for everything that can go wrong in a request, never a bare 500."""

    @app.errorhandler(CSRFError)
    def csrf_error(_exc: CSRFError) -> ResponseReturnValue:
        return _error_page(400, t("http.403", g.get("lang", "en")))

    @app.errorhandler(InvalidToken)
    def invalid_token(exc: InvalidToken) -> ResponseReturnValue:
        key = "token.expired" if "expired" in str(exc) else "token.invalid"
        return _error_page(400, t(key, g.get("lang", "en")))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        key = f"http.{code}" if code in (400, 403, 404, 405, 413, 429) else "http.400"
        response = _error_page(code, t(key, g.get("lang", "en")))
        # Werkzeug raises 405 as MethodNotAllowed, the HTTPException that carries valid_methods.
        allowed = cast(MethodNotAllowed, exc).valid_methods if code == 405 else None
        if allowed:
            return response[0], code, {"Allow": ", ".join(allowed)}
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        # The route's rule (/preferences/<token>), or the masked path: a path can carry a link's token.
        where = request.url_rule.rule if request.url_rule is not None else mask_tokens(request.path)
        log.exception("unhandled error on %s %s", request.method, where)
        db().rollback()
        return _error_page(500, t("http.500", g.get("lang", "en")))


# Home and subscribe ---------------------------------------------------------------------------

@bp.route("/", methods=["GET", "POST"])
def index() -> ResponseReturnValue:
    form = SubscribeForm()
    lang = g.lang
    if request.method == "GET":
        form.language.data = lang
        # The page's language zone; form.js may put the browser's zone in its place.
        return _render_index(form, guess_zone=True)
    if not form.validate():  # validate() checks CSRF; ours follows
        return _render_index(form, status=400)
    if form.add_row.data:
        # Without JavaScript the button is a POST; it is no attempt to subscribe, so it costs none.
        form.ensure_rows(extra=1)
        return _render_index(form)
    # Only a real submission counts against RATELIMIT_SUBSCRIBE; over it, the form comes back filled in.
    wait = spend_submission()
    if wait is not None:
        return _render_index(form, status=429, retry_after=wait)
    email = form.clean_email(lang, smtputf8())
    # Every repository is new to a signup: whether the address has a list is not for the form to say.
    repos = form.clean_repos(lang, repository_check().check)
    language = form.clean_language(lang)
    # A clock field left out of the POST takes the default of the language chosen.
    schedule = form.clean_schedule(lang, language or lang)
    if not (email and repos is not None and language and schedule is not None):
        return _render_index(form, status=400)
    outcome = subscriptions.request_subscription(
        db(), email, repos, language, smtputf8=smtputf8(),
        confirmations_per_day=current_app.config["CONFIRM_EMAILS_PER_DAY"], schedule=schedule)
    db().commit()
    if outcome.request is not None:
        _send_confirmation(outcome.request)
    _flash_unchecked(form.unchecked, lang)
    session["check_email"] = display_email(email)
    return redirect(url_for("web.check_email", lang=lang))


def _render_index(form: SubscribeForm, status: int = 200, retry_after: int | None = None,
                  guess_zone: bool = False) -> ResponseReturnValue:
    form.ensure_rows()
    language = form.language.data if form.language.data in LANGUAGES else g.lang
    form.fill_clock(parse_schedule(language))
    html = render_template("web/index.html", form=form, sample=sample_commits(g.lang),
                           errors=form.error_links(), retry_after=retry_after, guess_zone=guess_zone)
    if retry_after is not None:
        return html, status, {"Retry-After": str(retry_after)}
    return html, status


def _flash_unchecked(unchecked: list[str], lang: str) -> None:
    """Say which repositories were accepted without a check (GitHub did not answer in time)."""
    if unchecked:
        flash(t("notice.repos_unchecked", lang, repos=", ".join(unchecked)), "notice")


def _send_confirmation(signup: SignupRequest) -> None:
    # The page is the same whether or not this succeeds, so a failure never tells anyone which
    # addresses exist; the log has it for the operator, and subscribing again sends a new link.
    send_confirmation(current_app.config, make_mailer(current_app.config), signup)


@bp.get("/check-email")
def check_email() -> ResponseReturnValue:
    email = session.get("check_email")
    if not email:
        return redirect(url_for("web.index"))
    return render_template("web/check_email.html", email=email)


# Confirm --------------------------------------------------------------------------------------

@bp.route("/confirm/<token>", methods=["GET", "POST"])
@limiter.limit(_confirm_limit, methods=["POST"], exempt_when=_ratelimit_off)
def confirm(token: str) -> ResponseReturnValue:
    config = current_app.config
    signup = links.request_from_token(db(), config["SECRET_KEY"], token, config["CONFIRM_MAX_AGE_DAYS"])
    g.lang = request.args.get("lang") if request.args.get("lang") in LANGUAGES else signup.language
    form = ButtonForm()
    if request.method == "POST":
        if not form.validate():
            abort(400)
        subscriber = subscriptions.confirm_request(db(), signup.id)
        db().commit()
        preferences = url_for("web.preferences",
                              token=links.preferences_token(config["SECRET_KEY"], subscriber))
        # Say when the first email comes: the subscriber's first slot after now, on their own clock.
        return render_template("web/confirmed.html", preferences_url=preferences,
                               first_email=_next_email(subscriber, g.lang), weekly=clock_of(subscriber).weekly,
                               paused=subscriber.paused)
    if signup.confirmed_at is not None:
        # A used link says so rather than offering the button again.
        confirmed = signup.subscriber.status is SubscriberStatus.CONFIRMED
        return render_template("web/already_confirmed.html",
                               preferences_url=_preferences_url(signup.subscriber) if confirmed else None)
    # A GET only shows the button: mail scanners prefetch links and must not confirm anything.
    asked = signup.schedule
    if asked is None:  # a request from before clocks: confirming keeps the clock, or gives the language's
        fresh = signup.subscriber.confirmed_at is None
        asked = parse_schedule(signup.language) if fresh else saved_clock(signup.subscriber)
    return render_template("web/confirm.html", form=form, email=display_email(signup.subscriber.email),
                           repos=signup.repos, schedule=schedule_text(asked, g.lang))


# Preferences ----------------------------------------------------------------------------------

@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> ResponseReturnValue:
    config = current_app.config
    subscriber = links.subscriber_from_token(db(), config["SECRET_KEY"], links.PREFERENCES, token,
                                             config["PREFERENCES_MAX_AGE_DAYS"])
    if request.args.get("lang") not in LANGUAGES:
        g.lang = subscriber.language
    lang = g.lang
    active = subscriber.status in (SubscriberStatus.CONFIRMED, SubscriberStatus.PENDING)
    unsubscribe_url = url_for("web.unsubscribe", token=links.unsubscribe_token(config["SECRET_KEY"], subscriber))
    form = PreferencesForm()
    status = 200
    if request.method == "POST":
        if not active:
            abort(400)
        if form.validate():
            if form.add_row.data:
                form.ensure_rows(extra=1)
            else:
                # Repositories already in the list stay without a new check: one the operator granted
                # (a private one) must survive a save.
                repos = form.clean_repos(lang, repository_check().check,
                                         known={s.repo for s in subscriber.subscriptions})
                language = form.clean_language(lang)
                # A clock field left out of the POST keeps the saved value.
                schedule = form.clean_schedule(lang, language or lang, fallback=saved_clock(subscriber))
                if repos is not None and language and schedule is not None:
                    subscriptions.update_preferences(db(), subscriber, repos, language,
                                                     form.paused.data, form.send_empty.data, schedule=schedule)
                    db().commit()
                    flash(t("prefs.saved", language), "success")
                    _flash_unchecked(form.unchecked, language)
                    return redirect(url_for("web.preferences", token=token))
                status = 400
        else:
            status = 400
    else:
        form.language.data = subscriber.language
        form.paused.data = subscriber.paused
        form.send_empty.data = subscriber.send_empty
        while len(form.repos):
            form.repos.pop_entry()
        for item in subscriber.subscriptions:
            form.repos.append_entry({"repo": item.repo, "threshold": item.threshold.value})
    form.ensure_rows()
    form.fill_clock(saved_clock(subscriber))  # the saved clock, or what a POST left out of it
    next_email = _next_email(subscriber, lang) if subscriber.status is SubscriberStatus.CONFIRMED else None
    return render_template("web/preferences.html", form=form, email=display_email(subscriber.email),
                           active=active, unsubscribe_url=unsubscribe_url, errors=form.error_links(),
                           next_email=next_email, paused=subscriber.paused), status


def saved_clock(subscriber: Subscriber) -> dict[str, object]:
    """A subscriber's clock as validation.parse_schedule gives one."""
    clock = clock_of(subscriber)
    return {"timezone": clock.timezone, "hour": clock.hour, "frequency": clock.frequency, "weekday": clock.weekday}


def schedule_text(schedule: dict[str, Any], lang: str) -> str:
    """A clock in words: "every day at 08:00 (Asia/Shanghai)", "every Monday at 08:00 (UTC)"."""
    hour = f"{int(schedule['hour']):02d}:00"
    if schedule["frequency"] == "weekly":
        day = t(f"clock.day.{WEEKDAYS[int(schedule['weekday'])]}", lang)
        return t("clock.every_week", lang, day=day, hour=hour, timezone=schedule["timezone"])
    return t("clock.every_day", lang, hour=hour, timezone=schedule["timezone"])


def _next_email(subscriber: Subscriber, lang: str, now: datetime | None = None) -> str:
    """When the subscriber's next email goes, in their zone: "Tue 2026-03-10 08:00 (Asia/Shanghai)".

    Their first slot after now (after confirming, the first email goes at the first slot), passing over
    any the delivery planner would (clock.due_slot): one not far enough after their previous email's,
    such as a weekly weekday moved to two days after the last email.
    """
    clock: Clock = clock_of(subscriber)
    previous = db().scalar(select(func.max(Delivery.slot)).where(Delivery.subscriber_id == subscriber.id))
    return describe(clock, clock.next_email_slot(now or datetime.now(UTC), previous), lang)


# Unsubscribe (RFC 8058) -----------------------------------------------------------------------

@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # type: ignore[untyped-decorator]  # flask_wtf ships no type information
def unsubscribe(token: str) -> ResponseReturnValue:
    subscriber = links.subscriber_from_token(db(), current_app.config["SECRET_KEY"], links.UNSUBSCRIBE, token)
    if request.args.get("lang") not in LANGUAGES:
        g.lang = subscriber.language
    if request.method == "POST":
        # One-click: a mail client posts List-Unsubscribe=One-Click with no cookie and no CSRF token.
        if request.form.get("List-Unsubscribe") != "One-Click":
            abort(400)
        subscriptions.unsubscribe(db(), subscriber)
        db().commit()
        log.info("subscriber %s unsubscribed", subscriber.id)
        return render_template("web/unsubscribed.html", email=display_email(subscriber.email)), 200
    done = subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED)
    return render_template("web/unsubscribe.html", email=display_email(subscriber.email), done=done,
                           form=ButtonForm(), subscriber=subscriber,
                           preferences_url=None if done else _preferences_url(subscriber))


@bp.post("/unsubscribe/<token>/less")
def less_email(token: str) -> ResponseReturnValue:
    """The unsubscribe page's gentler choices: pause the email, or keep only high-importance commits."""
    subscriber = links.subscriber_from_token(db(), current_app.config["SECRET_KEY"], links.UNSUBSCRIBE, token)
    if request.args.get("lang") not in LANGUAGES:
        g.lang = subscriber.language
    form = ButtonForm()
    choice = request.form.get("choice")
    if not form.validate() or choice not in ("pause", "high"):
        abort(400)
    if subscriber.status not in (SubscriberStatus.CONFIRMED, SubscriberStatus.PENDING):
        abort(400)
    if choice == "pause":
        subscriptions.pause(db(), subscriber)
    else:
        subscriptions.only_high(db(), subscriber)
    db().commit()
    return render_template("web/less_email.html", choice=choice, email=display_email(subscriber.email),
                           preferences_url=_preferences_url(subscriber))


def _preferences_url(subscriber: Subscriber) -> str:
    return url_for("web.preferences", token=links.preferences_token(current_app.config["SECRET_KEY"], subscriber))


# Health ---------------------------------------------------------------------------------------

@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    checks = {"database": current_app.extensions["db"].check()}
    try:
        client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "error", **checks), 200 if healthy else 503
