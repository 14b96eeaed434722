"""Absolute links for emails, built on BASE_URL (the routes are part of the public interface)."""
from __future__ import annotations

from . import subscriptions
from .models import SignupRequest, Subscriber


def confirm_url(config: dict, signup: SignupRequest) -> str:
    return f"{config['BASE_URL']}/confirm/{subscriptions.confirm_token(config['SECRET_KEY'], signup)}"


def preferences_url(config: dict, subscriber: Subscriber) -> str:
    return f"{config['BASE_URL']}/preferences/{subscriptions.preferences_token(config['SECRET_KEY'], subscriber)}"


def unsubscribe_url(config: dict, subscriber: Subscriber) -> str:
    return f"{config['BASE_URL']}/unsubscribe/{subscriptions.unsubscribe_token(config['SECRET_KEY'], subscriber)}"
