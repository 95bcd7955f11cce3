"""ServeSettings and Limits refuse bad values before anything binds, naming the setting."""

from __future__ import annotations

import pytest

from runtrace.serve import Limits, ServeConfigError, ServeSettings
from runtrace.serve.settings import is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_token(host: str) -> None:
    assert is_loopback(host)
    assert ServeSettings(host=host).token is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.internal"])
def test_any_other_host_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ServeConfigError, match=f"refusing to listen on {host} without a token"):
        ServeSettings(host=host)
    assert ServeSettings(host=host, token="t").host == host


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"port": 70000}, "port must be an integer from 0 to 65535"),
        ({"grpc_port": -1}, "grpc_port must be an integer from 0 to 65535"),
        ({"port": 4318, "grpc_port": 4318}, "HTTP and gRPC need their own ports"),
        ({"token": " "}, "token must be a non-empty string"),
        ({"host": ""}, "host must be a non-empty string"),
        ({"log_interval_s": -1}, "log_interval_s must be a number >= 0"),
        ({"limits": {"max_body_bytes": 1}}, "limits must be a Limits"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ServeConfigError, match=message):
        ServeSettings(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_body_bytes": 0}, "Limits.max_body_bytes must be a positive integer"),
        ({"max_attributes": 1.5}, "Limits.max_attributes must be a positive integer"),
        ({"max_value_length": True}, "Limits.max_value_length must be a positive integer"),
        ({"max_connections": 0}, "Limits.max_connections must be a positive integer"),
        ({"retry_after_s": -1}, "Limits.retry_after_s must be a whole number"),
        ({"body_timeout_s": float("inf")}, "Limits.body_timeout_s must be a positive number"),
        ({"max_future_s": 0}, "Limits.max_future_s must be a positive number"),
    ],
)
def test_bad_limits_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ServeConfigError, match=message):
        Limits(**kwargs)


def test_a_settings_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        ServeSettings(port=-5)
