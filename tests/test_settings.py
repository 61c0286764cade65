"""Settings read from the environment: refused values say what is wrong, in the setting's own unit."""

from __future__ import annotations

import ipaddress

import pytest

from bot.config import ConfigError, Settings, parse_networks


@pytest.mark.parametrize(
    ("written", "network", "single"),
    [
        ("127.0.0.2/24", "127.0.0.0/24", "127.0.0.2/32"),
        ("10.1.2.3/8", "10.0.0.0/8", "10.1.2.3/32"),
        ("fd12:3456::1/48", "fd12:3456::/48", "fd12:3456::1/128"),
    ],
)
def test_a_network_with_host_bits_set_is_refused_not_widened(written: str, network: str, single: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"LINKPACT_ALLOW_NETWORKS": f"127.0.0.1/32, {written}"})
    message = str(raised.value)
    assert message.startswith(f"LINKPACT_ALLOW_NETWORKS: {written} has host bits set")
    assert f"the whole network {network}" in message  # what it would have allowed
    assert single in message  # the other reading: that one address


def test_networks_written_exactly_are_read() -> None:
    assert parse_networks("127.0.0.0/24, ::1/128,10.0.0.7/32, 10.0.0.8") == (
        ipaddress.ip_network("127.0.0.0/24"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("10.0.0.7/32"),
        ipaddress.ip_network("10.0.0.8/32"),
    )
    with pytest.raises(ConfigError, match="'localhost' is not a network in CIDR form"):
        parse_networks("localhost")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LINKPACT_RECHECK_INTERVAL_H", "daily", "'daily' is not a number of hours"),
        ("LINKPACT_LOSS_CONFIRM_AFTER_H", "-1", "must be a number of hours above 0, got -1"),
        ("LINKPACT_TIMEOUT_S", "soon", "'soon' is not a number of seconds"),
        ("LINKPACT_MAX_RETRY_AFTER_S", "0", "must be a number of seconds above 0, got 0"),
        ("LINKPACT_READ_TIMEOUT_S", "nan", "must be a number of seconds above 0, got nan"),
        ("LINKPACT_MAX_BODY_BYTES", "5MB", "'5MB' is not a whole number of bytes"),
        ("LINKPACT_MAX_BODY_BYTES", "0", "must be at least 1 byte, got 0"),
        ("LINKPACT_PRUNE_SNOOZE_DAYS", "a month", "'a month' is not a whole number of days"),
        ("LINKPACT_PRUNE_GRACE_DAYS", "-3", "must be at least 0 days, got -3"),
        ("LINKPACT_CONCURRENCY", "0", "must be at least 1, got 0"),
        ("LINKPACT_RETRIES", "x", "'x' is not a whole number$"),
    ],
)
def test_errors_name_the_settings_unit(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: {message}"):
        Settings.from_env({name: value})
