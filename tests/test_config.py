"""Missing settings come from the environment by one rule, for the client and the CLI alike."""

from __future__ import annotations

import pytest

from telegent_async._config import (
    DEFAULT_BASE_URL,
    Credentials,
    MissingCredentialsError,
    credentials_from,
)

ENV = {
    "TELEGENT_TOKEN": "env-token",
    "TELEGENT_ACCOUNT_KEY": "env-key",
    "TELEGENT_ACCOUNT_SECRET": "env-secret",
    "TELEGENT_BASE_URL": "https://env.invalid/v1.0",
}


def test_arguments_win_over_the_environment() -> None:
    got = credentials_from("tok", base_url="https://arg.invalid", env=ENV)
    assert got == Credentials("tok", None, None, "https://arg.invalid")


def test_the_environment_token_only_when_no_credential_was_passed() -> None:
    assert credentials_from(env=ENV).token == "env-token"
    got = credentials_from(account_key="key", env=ENV)  # the secret comes from the environment
    assert got == Credentials(None, "key", "env-secret", "https://env.invalid/v1.0")


def test_empty_variables_count_as_unset_and_the_default_url_applies() -> None:
    env = {"TELEGENT_TOKEN": "", "TELEGENT_ACCOUNT_KEY": "k", "TELEGENT_ACCOUNT_SECRET": "s"}
    assert credentials_from(env=env) == Credentials(None, "k", "s", DEFAULT_BASE_URL)


def test_missing_halves_are_named() -> None:
    with pytest.raises(MissingCredentialsError, match=r"^account_secret is missing") as caught:
        credentials_from(account_key="key", env={})
    assert caught.value.missing == ("TELEGENT_ACCOUNT_SECRET",)
    with pytest.raises(MissingCredentialsError, match="no credentials") as caught:
        credentials_from(env={"TELEGENT_TOKEN": ""})
    assert caught.value.missing == ("TELEGENT_ACCOUNT_KEY", "TELEGENT_ACCOUNT_SECRET")


def test_it_is_a_value_error() -> None:
    assert issubclass(MissingCredentialsError, ValueError)


def test_repr_shows_no_secret() -> None:
    assert "secret" not in repr(credentials_from(account_key="k", account_secret="secret", env={}))
