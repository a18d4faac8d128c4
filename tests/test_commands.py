"""Every project management command: help text on every argument, --quiet for cron, progress bars on stderr."""
from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command, get_commands, load_command_class

from config.commands import BaseCommand

DJANGO_OPTIONS = {"help", "version", "verbosity", "settings", "pythonpath", "traceback", "no_color", "force_color",
                  "skip_checks"}
PROJECT_APPS = {"members", "analytics", "community", "config"}


def project_commands() -> list[tuple[str, str]]:
    return sorted((name, app) for name, app in get_commands().items() if app in PROJECT_APPS)


def test_there_are_project_commands():
    assert len(project_commands()) >= 15
    assert all(apps.is_installed(app) for _name, app in project_commands())


@pytest.mark.parametrize(("name", "app"), project_commands())
def test_every_argument_has_help_and_there_is_quiet(name, app):
    command = load_command_class(app, name)
    assert isinstance(command, BaseCommand), f"{name} does not use config.commands.BaseCommand"
    parser = command.create_parser("manage.py", name)
    missing = [action.dest for action in parser._actions if action.dest not in DJANGO_OPTIONS and not action.help]
    assert missing == [], f"{name}: arguments without help: {missing}"
    assert any("--quiet" in action.option_strings for action in parser._actions)
    assert command.help, f"{name} has no description"


@pytest.mark.django_db
def test_quiet_prints_nothing_for_cron():
    out = StringIO()
    call_command("demo_logins", stdout=out)
    loud = out.getvalue()
    out = StringIO()
    call_command("demo_logins", "--quiet", stdout=out)
    assert out.getvalue() == "" and loud != ""


def test_progress_shows_an_eta_on_stderr_and_nothing_when_quiet():
    command = BaseCommand(stdout=StringIO(), stderr=StringIO())
    command.verbosity, command.quiet = 1, False
    assert list(command.progress(range(3), desc="work")) == [0, 1, 2]
    assert "work" in command.stderr._out.getvalue() and "<" in command.stderr._out.getvalue()  # elapsed<remaining

    quiet = BaseCommand(stdout=StringIO(), stderr=StringIO())
    quiet.verbosity, quiet.quiet = 0, True
    assert list(quiet.progress(range(3))) == [0, 1, 2]
    assert quiet.stderr._out.getvalue() == ""
