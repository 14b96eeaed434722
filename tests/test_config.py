"""Settings: defaults, checks, the generated secret key, and the README documenting all of them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.config import SETTINGS, instance_secret_key, load_config
from newsletter.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_embedded_defaults(tmp_path):
    config = load_config({}, instance_path=tmp_path)
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'newsletter.sqlite3'}"
    assert config["REDIS_URL"] == "redis://localhost:6379/0"
    assert config["MAIL_BACKEND"] == "outbox" and config["OUTBOX_DIR"] == str(tmp_path / "outbox")
    assert config["SECRET_KEY"] is None  # create_app generates and keeps one in the instance folder


def test_environment_overrides_and_types(tmp_path):
    config = load_config({"DATABASE_URL": "postgresql+psycopg://u@h/db", "MAX_CONTENT_LENGTH": "1024",
                          "RATELIMIT_ENABLED": "false", "BASE_URL": "https://daily.example.org/"}, tmp_path)
    assert config["DATABASE_URL"] == "postgresql+psycopg://u@h/db"
    assert config["MAX_CONTENT_LENGTH"] == 1024 and config["RATELIMIT_ENABLED"] is False
    assert config["BASE_URL"] == "https://daily.example.org"


@pytest.mark.parametrize("environ, message", [
    ({"MAIL_BACKEND": "pigeon"}, "MAIL_BACKEND"),
    ({"MAIL_BACKEND": "sendgrid"}, "SENDGRID_API_KEY"),
    ({"BASE_URL": "daily.example.org"}, "BASE_URL"),
    ({"MAX_CONTENT_LENGTH": "lots"}, "MAX_CONTENT_LENGTH"),
    ({"RATELIMIT_ENABLED": "maybe"}, "RATELIMIT_ENABLED"),
])
def test_bad_settings_are_clear_errors(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ, tmp_path)


def test_generated_secret_key_is_kept_and_private(tmp_path):
    first = instance_secret_key(tmp_path)
    assert len(first) >= 32 and instance_secret_key(tmp_path) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.M))
    missing = {s.name for s in SETTINGS} - documented
    assert not missing, f"README lacks settings: {sorted(missing)}"


def test_string_overrides_of_typed_settings_are_converted(tmp_path):
    from newsletter.config import build_config

    settings = build_config({"SMTP_TIMEOUT": "5", "DELIVERY_RETRY_HOURS": "2", "RATELIMIT_ENABLED": "0",
                             "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 40, "TESTING": True})
    assert settings["SMTP_TIMEOUT"] == 5.0 and settings["DELIVERY_RETRY_HOURS"] == 2
    assert settings["RATELIMIT_ENABLED"] is False and settings["TESTING"] is True
