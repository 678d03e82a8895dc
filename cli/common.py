"""What every command group shares: the consoles, tables and pages, exit codes, and how a command
gets at the hub: the whole hub for what changes something, only the store for what reads."""

from __future__ import annotations

import csv
import getpass
import sys
from enum import Enum

import typer
from rich import box
from rich.console import Console
from rich.table import Table

out = Console() if sys.stdout.isatty() else Console(width=240)
err = Console(stderr=True, width=240)
FAILED, CONFIG = 1, 3


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class Reveal(str, Enum):
    """How a listing shows personnummer."""

    masked = "masked"
    full = "full"


FORMAT = typer.Option(Format.table, help="table (to read), csv or json (to compare or load)")
PERSONNUMMER = typer.Option(Reveal.masked, help="full only for the tenant's personal_data_readers (audited)")


def new_table(*columns: str, title: str | None = None) -> Table:
    """A table: drawn with boxes on a terminal, plain aligned columns when piped."""
    return Table(*columns, title=title, box=box.HEAVY_HEAD if out.is_terminal else None)


def fail(message: str, code: int = FAILED) -> typer.Exit:
    err.print(f"casehub: {message}", markup=False, highlight=False)
    return typer.Exit(code)


def build_hub():
    """The hub of this process, with every flow registered; exits 3 on a bad configuration."""
    import flows
    from core import logs
    from core.config import ConfigError, unknown_sections
    from core.runtime import Hub
    from core.scheduler import unknown_jobs

    logs.install()
    flows.load()
    try:
        hub = Hub()
    except ConfigError as error:
        raise fail(str(error), CONFIG) from None
    unknown = unknown_sections(hub.config) + unknown_jobs(hub.config)
    if unknown:
        raise fail(f"{hub.settings.config}: " + "; ".join(unknown), CONFIG)
    return hub


def whoami() -> str:
    return f"user:{getpass.getuser()}"


LIMIT = typer.Option(100, min=1, help="rows to show")
OFFSET = typer.Option(0, min=0, help="rows to skip (the next page starts at the offset printed below a page)")


def print_page(table: Table, page, what: str) -> None:
    """A page of a listing, and below it how many there are in all and how to see the next page."""
    out.print(table)
    if not page.rows:
        out.print(f"no {what} from offset {page.offset}, {page.total} in all")
        return
    line = f"{what} {page.offset + 1}-{page.offset + len(page.rows)} of {page.total}"
    if page.more:
        line += f"; {page.more} more: --offset {page.offset + len(page.rows)}"
    out.print(line)


def open_store():
    """The store and the configuration, for a command that only reads: no bus, no broker connection."""
    from core import logs
    from core.config import ConfigError, load
    from core.settings import Settings
    from core.store import Store

    logs.install()
    settings = Settings()
    try:
        config = load(settings.config)
    except ConfigError as error:
        raise fail(str(error), CONFIG) from None
    return Store(settings.database_url), config


def period_of(text: str):
    from schemas.money import Period

    try:
        return Period.parse(text)
    except ValueError as error:
        raise fail(f"--period: {error}", 2) from None


def print_csv(columns: list[str], rows: list[list]) -> None:
    """Rows as `;`-separated CSV on standard output, as the hub's files are written."""
    writer = csv.writer(sys.stdout, delimiter=";", lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
