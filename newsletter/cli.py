"""The `newsletter` command. Commands parse arguments and call the same services as the site."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from . import migrate, subscriptions
from .errors import NewsletterError, ValidationError
from .validation import parse_repo_spec


def _db():
    return current_app.extensions["db"]


@click.group("db")
def db_group():
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision):
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}: {_safe_url(current_app.config['DATABASE_URL'])}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision):
    """Revert migrations down to REVISION."""
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message):
    """Autogenerate a migration from the models (developers)."""
    migrate.revision(current_app.config["DATABASE_URL"], message)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.command("subscribe")
@click.argument("email")
@click.option("--repo", "repos", multiple=True, required=True, metavar="OWNER/NAME[:high|medium|low]",
              help="A repository and its threshold (default medium); repeat for more.")
@click.option("--lang", "language", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option("--confirmed", is_flag=True, help="Confirm at once and send no confirmation email.")
@with_appcontext
def subscribe_command(email, repos, language, confirmed):
    """Subscribe EMAIL (double opt-in unless --confirmed)."""
    from .emails import send_confirmation
    from .mailers import make_mailer

    database = _db()
    try:
        parsed = [parse_repo_spec(spec) for spec in repos]
        with database.transaction() as session:
            if confirmed:
                subscriber = subscriptions.subscribe_confirmed(session, email, parsed, language)
                signup = None
            else:
                outcome = subscriptions.request_subscription(session, email, parsed, language, source="cli")
                subscriber, signup = outcome.subscriber, outcome.request
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    if confirmed:
        click.echo(f"{subscriber.email} confirmed: " + ", ".join(f"{r}:{t.value}" for r, t in parsed))
    elif signup is None:
        raise click.ClickException(f"{subscriber.email} is suppressed; no confirmation email was sent.")
    else:
        config = current_app.config
        if not send_confirmation(config, make_mailer(config), signup):
            raise click.ClickException("the confirmation email could not be sent; see the log")
        click.echo(f"confirmation email sent to {subscriber.email} through {config['MAIL_BACKEND']}")


def register(app) -> None:
    """Attach the commands to app.cli, so `flask --app wsgi ...` has them too."""
    app.cli.add_command(db_group)
    app.cli.add_command(subscribe_command)


def _create_app():
    from . import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, add_version_option=False, load_dotenv=False,
                 help="Repo Daily: the daily GitHub-commit newsletter.")


def main() -> None:
    try:
        cli.main(prog_name="newsletter")
    except NewsletterError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
