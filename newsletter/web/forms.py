"""Site forms. WTForms carries the fields and CSRF; newsletter.validation decides what is valid."""
from __future__ import annotations

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

from ..errors import ValidationError
from ..i18n import t
from ..models import Threshold
from ..subscribers.validation import (
    MAX_REPOS,
    check_repo_list,
    normalize_email,
    parse_language,
    parse_repo,
    parse_threshold,
)

THRESHOLDS = [t.value for t in Threshold]


class RepoRow(Form):
    """One repository and its threshold; a blank row is ignored."""

    repo = StringField()
    # WTForms takes plain values as choices (each is its own label); types-WTForms wants (value, label).
    threshold = SelectField(choices=THRESHOLDS, default=Threshold.MEDIUM.value,  # type: ignore[arg-type]
                            validate_choice=False)


class _RepoForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type information: FlaskForm is Any
    # Plain values as choices, as in RepoRow.threshold.
    language = SelectField(choices=["en", "zh"], validate_choice=False)  # type: ignore[list-item]
    repos = FieldList(FormField(RepoRow), min_entries=3)
    add_row = SubmitField()

    def clean_repos(self, lang: str) -> list[tuple[str, Threshold]] | None:
        """Validate the rows, attaching messages next to each bad field; None when any is bad."""
        ok = True
        repos: list[tuple[str, Threshold]] = []
        for row in self.repos:
            if not (row.repo.data or "").strip():
                continue
            try:
                repos.append((parse_repo(row.repo.data), parse_threshold(row.threshold.data)))
            except ValidationError as exc:
                row.repo.errors = [*row.repo.errors, exc.message(lang)]
                ok = False
        try:
            check_repo_list(repos)
        except ValidationError as exc:
            self.form_errors.append(exc.message(lang))
            ok = False
        return repos if ok else None

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


class SubscribeForm(_RepoForm):
    email = StringField()
    submit = SubmitField()

    def clean_email(self, lang: str) -> str | None:
        try:
            return normalize_email(self.email.data)
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
