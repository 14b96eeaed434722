"""Site forms. WTForms carries the fields and CSRF; newsletter.validation decides what is valid."""
from __future__ import annotations

from collections.abc import Callable, Collection
from functools import lru_cache
from typing import Any

from flask import g
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    SubmitField,
)

from ..clock import WEEKDAYS, region_zones, weekday_number
from ..errors import ValidationError
from ..i18n import has, t
from ..models import Threshold
from ..subscribers.repositories import CheckOutcome
from ..subscribers.validation import (
    MAX_REPOS,
    check_repo_list,
    normalize_email,
    parse_language,
    parse_repo,
    parse_schedule,
    parse_threshold,
)

THRESHOLDS = [t.value for t in Threshold]


class TextField(StringField):
    """A text input that refuses a file in its place: a multipart POST can send any field as a file part."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and not isinstance(valuelist[0], str):
            self.data = None
            # WTForms keeps a ValueError raised here as the field's error; validate() then fails.
            raise ValueError(t("error.text_expected", g.get("lang", "en")))
        super().process_formdata(valuelist)


class RepoRow(Form):
    """One repository and its threshold; a blank row is ignored."""

    repo = TextField()
    # WTForms takes plain values as choices (each is its own label); types-WTForms wants (value, label).
    threshold = SelectField(choices=THRESHOLDS, default=Threshold.MEDIUM.value,  # type: ignore[arg-type]
                            validate_choice=False)


# The clock's fields, in page order.
CLOCK_FIELDS = ("timezone", "hour", "frequency", "weekday")


class _RepoForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type information: FlaskForm is Any
    # Plain values as choices, as in RepoRow.threshold.
    language = SelectField(choices=["en", "zh"], validate_choice=False)  # type: ignore[list-item]
    repos = FieldList(FormField(RepoRow), min_entries=3)
    add_row = SubmitField()
    # The subscriber's clock (clock.py); validation.parse_schedule decides what is valid. No WTForms
    # default: a field left out of a POST stays None, and the view says what stands in for it.
    timezone = TextField()
    hour = TextField()
    frequency = TextField()
    weekday = TextField()

    def clean_repos(self, lang: str, check: Callable[[list[str]], CheckOutcome] | None = None,
                    known: Collection[str] = ()) -> list[tuple[str, Threshold]] | None:
        """Validate the rows, attaching messages next to each bad field; None when any is bad.

        check: asked about the well-formed repositories not in `known`, once the list itself is
        acceptable; answers which of them to refuse and which could not be checked now
        (repositories.RepositoryCheck.check). The unchecked ones are accepted and left in
        `self.unchecked` for the view to mention.
        """
        ok = True
        repos: list[tuple[str, Threshold]] = []
        seen: set[str] = set()
        self.unchecked: list[str] = []
        for row in self.repos:
            if not (row.repo.data or "").strip():
                continue
            try:
                repo, threshold = parse_repo(row.repo.data), parse_threshold(row.threshold.data)
            except ValidationError as exc:
                row.repo.errors = [*row.repo.errors, exc.message(lang)]
                ok = False
                continue
            if repo in seen:
                # On the row that repeats it, so the reader sees which one to clear.
                row.repo.errors = [*row.repo.errors, ValidationError("repo_duplicate", repo=repo).message(lang)]
                ok = False
                continue
            seen.add(repo)
            repos.append((repo, threshold))
        if ok:
            try:
                check_repo_list(repos)
            except ValidationError as exc:
                self.form_errors.append(exc.message(lang))
                ok = False
        if ok and check is not None:
            outcome = check([repo for repo, _ in repos if repo not in known])
            self.unchecked = outcome.unchecked
            for row in self.repos:
                name = _parsed(row.repo.data)
                error = outcome.refused.get(name) if name else None
                if error is not None:
                    row.repo.errors = [*row.repo.errors, error.message(lang)]
                    ok = False
        return repos if ok else None

    def error_links(self) -> list[tuple[str, str]]:
        """(field id, message) for every error on the form, in page order: the error summary's links."""
        links: list[tuple[str, str]] = []
        for name in ("email",):
            field = getattr(self, name, None)
            if field is not None:
                links.extend((field.id, error) for error in field.errors)
        for row in self.repos:
            links.extend((row.repo.id, error) for error in row.repo.errors)
        first_repo = self.repos[0].repo.id if len(self.repos) else "language"
        links.extend((first_repo, error) for error in self.form_errors)
        links.extend(("language", error) for error in self.language.errors)
        for name in CLOCK_FIELDS:
            field = getattr(self, name)
            links.extend((field.id, error) for error in field.errors)
        return links

    def fill_clock(self, clock: dict[str, object]) -> None:
        """Give each clock field the POST left out (or a fresh form's) its value in `clock`:
        validation.parse_schedule's defaults for a language, or a subscriber's saved clock."""
        shown = {"timezone": str(clock["timezone"]), "hour": str(clock["hour"]),
                 "frequency": str(clock["frequency"]), "weekday": WEEKDAYS[weekday_number(str(clock["weekday"]))]}
        for name in CLOCK_FIELDS:
            field = getattr(self, name)
            if field.data is None:
                field.data = shown[name]

    def clean_schedule(self, lang: str, language: str, fallback: dict[str, object] | None = None
                       ) -> dict[str, object] | None:
        """The clock asked for (validation.parse_schedule), or None with a message next to each bad field.

        A field the POST left out takes its value from `fallback` (the subscriber's saved clock), or
        else parse_schedule's default for `language` (the language the subscriber chose).
        """
        values: dict[str, object] = {}
        for name in CLOCK_FIELDS:
            raw = getattr(self, name).data
            values[name] = fallback[name] if raw is None and fallback is not None else raw
        ok = True
        for name in CLOCK_FIELDS:  # each field on its own, so every bad one is marked at once
            try:
                parse_schedule(language, **{name: values[name]})  # type: ignore[arg-type]
            except ValidationError as exc:
                field = getattr(self, name)
                field.errors = [*field.errors, exc.message(lang)]
                ok = False
        if not ok:
            return None
        return parse_schedule(language, **values)  # type: ignore[arg-type]

    def clock_selected(self) -> dict[str, str]:
        """What each clock select shows as chosen: the option value matching the field's data
        (09 and 9 are both 09:00, friday is fri), else the data as it came."""
        selected = {name: "" if getattr(self, name).data is None else str(getattr(self, name).data).strip()
                    for name in CLOCK_FIELDS}
        if selected["hour"].isdigit():
            selected["hour"] = str(int(selected["hour"]))
        try:
            selected["weekday"] = WEEKDAYS[weekday_number(selected["weekday"])]
        except ValueError:
            pass
        selected["frequency"] = selected["frequency"].lower()
        return selected

    def clean_language(self, lang: str) -> str | None:
        try:
            return parse_language(self.language.data)
        except ValidationError as exc:
            self.language.errors = [*self.language.errors, exc.message(lang)]
            return None

    def ensure_rows(self, extra: int = 0) -> None:
        """Add `extra` rows, and keep at least one empty row to type into (up to MAX_REPOS rows)."""
        filled = sum(1 for row in self.repos if (row.repo.data or "").strip())
        wanted = extra + (1 if filled == len(self.repos) and not extra else 0)
        for _ in range(wanted):
            if len(self.repos) >= MAX_REPOS:
                break
            self.repos.append_entry()


def _parsed(raw: object) -> str | None:
    try:
        return parse_repo(raw) if isinstance(raw, str) and raw.strip() else None
    except ValidationError:
        return None


class SubscribeForm(_RepoForm):
    email = TextField()
    submit = SubmitField()

    def clean_email(self, lang: str, smtputf8: Callable[[], bool] | None = None) -> str | None:
        """The address as stored (see normalize_email), or None with the message next to the field."""
        try:
            return normalize_email(self.email.data, smtputf8)
        except ValidationError as exc:
            self.email.errors = [*self.email.errors, exc.message(lang)]
            return None


class PreferencesForm(_RepoForm):
    paused = BooleanField()
    send_empty = BooleanField()
    submit = SubmitField()


class ButtonForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type information: FlaskForm is Any
    """A bare form with CSRF and one button: confirm, unsubscribe."""

    submit = SubmitField()
    next = HiddenField()


def threshold_choices(lang: str) -> list[tuple[str, str]]:
    return [(value, t(f"threshold.{value}", lang)) for value in THRESHOLDS]


@lru_cache(maxsize=1)
def zone_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """clock.region_zones(), read from the zone database once per process."""
    return tuple((region, tuple(names)) for region, names in region_zones().items())


def clock_choices(lang: str) -> dict[str, Any]:
    """The options of the clock's selects, labelled in lang: zones by region, hours, frequencies, weekdays."""
    groups = [(region, t(f"clock.region.{region.lower()}", lang) if has(f"clock.region.{region.lower()}") else region,
               names) for region, names in zone_groups()]
    return {
        "zone_groups": groups,
        "zones": frozenset(name for _, _, names in groups for name in names),
        "hours": [(str(hour), f"{hour:02d}:00") for hour in range(24)],
        "frequencies": [(value, t(f"clock.{value}", lang)) for value in ("daily", "weekly")],
        "weekdays": [(day, t(f"clock.day.{day}", lang)) for day in WEEKDAYS],
    }
