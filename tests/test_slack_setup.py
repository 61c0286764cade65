"""Set-up files for running the bot: .env.example documents every setting the code reads and loads as
valid settings; the Dockerfile copies files that exist and runs `linkpact serve` as a non-root user."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from bot.config import DigestSettings, Settings, slack_settings_from_env

ROOT = Path(__file__).resolve().parents[1]
ENV_NAME = re.compile(r"""["'](?P<name>(?:LINKPACT|SLACK)_[A-Z0-9_]+|PORT)["']""")
EXAMPLE_LINE = re.compile(r"^\s*#?\s*(?P<name>[A-Z][A-Z0-9_]*)=", re.MULTILINE)


def variables_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("handlers").rglob("*.py")]:
        names |= {m["name"] for m in ENV_NAME.finditer(path.read_text(encoding="utf-8"))}
    return names


def test_env_example_documents_every_variable_the_code_reads() -> None:
    text = ROOT.joinpath(".env.example").read_text(encoding="utf-8")
    documented = {m["name"] for m in EXAMPLE_LINE.finditer(text)}
    read = variables_read_by_the_code()
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "LINKPACT_DB"} <= read  # the scan works
    assert read - documented == set()
    # Each variable has a comment right above it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if EXAMPLE_LINE.match(line) and not line.lstrip().startswith("#"):
            assert lines[i - 1].lstrip().startswith("#"), f"no comment above {line!r}"


def test_env_example_as_copied_gives_valid_settings_once_the_secrets_are_filled() -> None:
    values = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    settings = Settings.from_env(values)
    assert str(settings.db_path) == "linkpact.json"
    slack = slack_settings_from_env({**values, "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert slack.app_token is None and slack.api_url == "https://slack.com/api/"
    assert slack.max_checks_per_workspace == 4
    assert slack.admins == () and slack.app_id is None
    # The digest is off until a channel is set; the schedule's defaults as documented: Monday 09:00 UTC.
    assert settings.digest == DigestSettings(channels=(), day="mon", hour=9, minute=0, tz="UTC")


def test_dockerfile_runs_linkpact_serve_as_non_root_with_a_data_volume() -> None:
    text = ROOT.joinpath("Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    assert 'VOLUME ["/data"]' in text and "LINKPACT_DB=/data/linkpact.json" in text
    assert "EXPOSE 3000" in text and 'CMD ["linkpact", "serve"]' in text
    for match in re.finditer(r"^COPY (?P<sources>.+) \S+$", text, re.MULTILINE):
        for source in match["sources"].split():
            assert ROOT.joinpath(source).exists(), f"Dockerfile copies {source}, which does not exist"
    ignored = ROOT.joinpath(".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored  # secrets never go into an image
