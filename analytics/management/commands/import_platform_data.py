"""Import a platform's exported history (members, products, orders, events) from CSV. Contract: docs/IMPORT.md."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from analytics.ingest.files import normalise_encoding
from analytics.ingest.platform import import_platform_data, render_report
from config.commands import BaseCommand

EXIT_REJECTED = 1
EXIT_USAGE = 2


class Command(BaseCommand):
    help = (
        "Import members/products/orders/events CSV files (UTF-8 with or without BOM, GBK/GB18030) or .xlsx workbooks "
        "(first sheet, header row). Every row is "
        "validated first; rejected rows are listed as file:line: column 'x': reason and written to --errors-out. "
        "Default is all-or-nothing: any rejected row means nothing is imported. --partial imports the good rows. "
        "Exit status: 0 = every row accepted (and imported unless --dry-run); 1 = at least one row or file was "
        "rejected (with --partial the good rows WERE imported; a file-level problem such as a wrong encoding, "
        "missing columns or an empty file always imports nothing); 2 = usage error (no file, file not found). "
        "Re-importing the same files changes nothing (upsert by the platform's ids). A coupon_code is linked to "
        "an existing coupon with that exact code; unknown codes are ignored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=Path, help="members CSV (member_id required)")
        parser.add_argument("--products", type=Path, help="products CSV (product_id, title required)")
        parser.add_argument("--orders", type=Path, help="orders CSV (order_id, member_id, ordered_at, amount required)")
        parser.add_argument("--events", type=Path, help="events CSV (member_id, kind, occurred_at required)")
        parser.add_argument("--dry-run", action="store_true", help="validate and report counts; write nothing")
        parser.add_argument("--partial", action="store_true", help="import the good rows even if some are rejected")
        parser.add_argument("--errors-out", type=Path, help="write every rejected row as CSV (file,line,column,reason,raw)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
        parser.add_argument(
            "--encoding", default=None,
            help="CSV encoding: utf-8, gbk or gb18030; default: detect (UTF-8 with or without BOM, else GB18030). "
                 ".xlsx files need none",
        )
        parser.add_argument(
            "--bulk-load", choices=("auto", "always", "never"), default=None,
            help="drop the secondary indexes of the order, enrolment and event tables during the import and rebuild "
                 "them before it commits (all-or-nothing mode only; the tables are locked for the import's duration "
                 "on PostgreSQL). auto (default, settings.IMPORT_BULK_LOAD): when a file holds at least "
                 "IMPORT_BULK_LOAD_MIN_ROWS rows and at least as many as the table it loads",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        files = {kind: options[kind] for kind in ("members", "products", "orders", "events")}
        if not any(files.values()):
            raise CommandError("Give at least one of --members, --products, --orders, --events.", returncode=EXIT_USAGE)
        for kind, path in files.items():
            if path is not None and not path.is_file():
                raise CommandError(f"--{kind}: no such file: {path}", returncode=EXIT_USAGE)

        try:
            encoding = normalise_encoding(options["encoding"])
        except ValueError as exc:
            raise CommandError(f"--encoding: {exc}", returncode=EXIT_USAGE) from exc
        quiet = options["quiet"]
        report = import_platform_data(
            **files,
            dry_run=options["dry_run"],
            partial=options["partial"],
            errors_out=options["errors_out"],
            progress=not options["no_progress"] and not quiet and options.get("verbosity", 1) > 0,
            encoding=encoding,
            bulk_load=options["bulk_load"],
            log=(lambda message: self.stderr.write(message)) if options.get("verbosity", 1) > 1 else None,
        )

        for error in report.first_errors:
            self.stderr.write(str(error))
        if report.error_count > len(report.first_errors):
            more = report.error_count - len(report.first_errors)
            where = f" (all in {options['errors_out']})" if options["errors_out"] else " (use --errors-out to get all)"
            self.stderr.write(f"... and {more} more{where}")
        if not quiet:
            self.stdout.write(render_report(report))

        if report.dry_run:
            self.stdout.write("dry run: nothing was written")
        elif report.written:
            self.stdout.write(self.style.SUCCESS("imported") if report.ok else "imported the good rows (--partial)")
        if not report.ok:
            outcome = "the good rows were imported" if report.written else "nothing was imported"
            raise CommandError(f"{report.error_count} problem(s) found; {outcome}.", returncode=EXIT_REJECTED)
