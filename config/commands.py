"""The base of every project management command: `--quiet` for cron and a progress bar with an ETA.

`--quiet` drops verbosity to 0, sends ordinary output nowhere and disables progress bars, so a cron job's mail
contains only problems (errors still go to stderr and the exit status says what happened). Progress bars are tqdm
on stderr — never stdout, which scripts parse — and only when verbosity > 0.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from django.core.management.base import BaseCommand as DjangoBaseCommand
from django.core.management.base import CommandParser, OutputWrapper
from tqdm import tqdm

T = TypeVar("T")
QUIET_HELP = "For cron: no progress bars and no output except errors (the exit status tells the outcome)."


class BaseCommand(DjangoBaseCommand):
    quiet = False

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if not any("--quiet" in action.option_strings for action in parser._actions):
            parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        self.quiet = bool(options.get("quiet"))
        self.verbosity = 0 if self.quiet else options.get("verbosity", 1)
        if self.quiet:
            options["verbosity"] = 0
            options["stdout"] = io.StringIO()
            self.stdout = OutputWrapper(options["stdout"])
        return super().execute(*args, **options)

    def progress(self, iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it"
                 ) -> Iterator[T]:
        """tqdm on stderr with rate and ETA (needs `total` or a sized iterable); silent when quiet."""
        out = getattr(self.stderr, "_out", self.stderr)
        return iter(tqdm(iterable, total=total, desc=desc, unit=unit, file=out, leave=False,
                         disable=self.quiet or getattr(self, "verbosity", 1) == 0, mininterval=0.5))
