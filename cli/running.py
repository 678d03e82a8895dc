"""Running the hub: `serve`, `worker`, `demo`, and what they need set up (schema, configuration, model)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import typer

from cli.common import CONFIG, FAILED, build_hub, err, fail, out

app = typer.Typer()
db = typer.Typer(no_args_is_help=True, help="The store's schema")
config = typer.Typer(no_args_is_help=True, help="The tenant and partner configuration")
schemas = typer.Typer(no_args_is_help=True, help="The canonical model")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    migrate: bool = True,
    processes: int = typer.Option(1, help="HTTP processes on this machine (needs amqp://)"),
) -> None:
    """Run the inbound HTTP app with an outbox relay and the scheduler; with amqp://, the AMQP inbound
    consumer too; on the in-process broker (memory://), the workers as well."""
    import uvicorn
    from sqlalchemy.engine import make_url

    hub = build_hub()
    if migrate:
        hub.store.migrate()
    if processes > 1 and hub.bus.in_process:
        raise fail("--processes > 1 needs a shared broker (CASEHUB_BROKER_URL=amqp://...)", 2)

    def shown(url: str) -> str:
        return make_url(url).render_as_string(hide_password=True)

    broker = "in process" if hub.bus.in_process else shown(hub.settings.broker_url)
    where = f"store {shown(hub.settings.database_url)}, broker {broker}"
    hub.stop()
    err.print(
        f"casehub serve: listening on http://{host}:{port} ({processes} process{'es' if processes > 1 else ''}; "
        f"{where}; configuration {hub.settings.config})"
    )
    # log_config=None: uvicorn's loggers write through the root logger's redacting handlers
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False, "log_config": None}
    if processes == 1:
        uvicorn.run(http_app(), **options)
    else:
        uvicorn.run("cli:http_app", factory=True, workers=processes, **options)


def http_app():
    """The HTTP app of one serving process, with its hub; the hub stops when the app shuts down."""
    import flows
    from adapters.amqp import EventConsumer
    from adapters.http_app import create_app

    hub = build_hub()
    hub.start(worker=hub.bus.in_process, scheduler=True)
    consumer = None if hub.bus.in_process else EventConsumer(hub)
    if consumer is not None:
        consumer.start()
    application = create_app(hub, flows.routes(hub))
    flows.console_pages(application.state.console)

    @application.on_event("shutdown")
    def stop() -> None:
        if consumer is not None:
            consumer.stop()
        hub.stop()

    return application


@app.command()
def worker(threads: int = typer.Option(None, help="worker threads (default CASEHUB_WORKER_THREADS)")) -> None:
    """Run the steps of every flow, and an outbox relay, until SIGTERM or SIGINT."""
    hub = build_hub()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    delay = 0.5
    while not hub.bus.reachable() and not stop.is_set():  # the broker may be down at start-up: wait for it
        err.print(f"casehub: the broker is not reachable; trying again in {delay:.1f} s")
        stop.wait(delay)
        delay = min(delay * 2, 30)
    if not stop.is_set():
        hub.start(worker=True, threads=threads)
        stop.wait()
    hub.stop()


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the store's tables to the newest migration."""
    hub = build_hub()
    hub.store.migrate()
    out.print("store is up to date")


@db.command("revision")
def db_revision(
    message: str = typer.Option(..., "--message", "-m", help="what the migration does"),
    owner: str = typer.Option(
        "core", "--flow", help="the flow whose tables change (orders, visits, reimbursement), or core"
    ),
) -> None:
    """Write a new migration into the owner's folder from what differs between the table definitions
    (core's and every flow's) and the store, which must be at the newest migration."""
    from alembic import command

    import flows
    from core.store import MIGRATIONS, alembic_config

    flows.load()
    folder = MIGRATIONS / "versions" if owner == "core" else Path(flows.__file__).parent / owner / "migrations"
    if not folder.is_dir():
        raise fail(f"--flow: no flow {owner} with migrations", 2)
    hub = build_hub()
    config = alembic_config()
    numbers = [
        int(p.name[:4])
        for location in config.get_main_option("version_locations").split(os.pathsep)
        for p in Path(location).glob("[0-9][0-9][0-9][0-9]_*.py")
    ]
    with hub.store.engine.begin() as connection:
        config.attributes["connection"] = connection
        written = command.revision(
            config, message=message, autogenerate=True, version_path=str(folder), rev_id=f"{max(numbers) + 1:04d}"
        )
    out.print(f"wrote {written.path}")


@config.command("check")
def config_check(file: Path) -> None:
    """Validate a configuration file; prints each problem with its place and exits 3 if any."""
    import flows
    from core import config, scheduler

    flows.load()  # each flow validates its own section
    problems = config.check(file)
    if not problems:
        problems = scheduler.unknown_jobs(config.load(file))
    for problem in problems:
        err.print(f"{file}: {problem}", markup=False, highlight=False)
    if problems:
        raise typer.Exit(CONFIG)
    out.print(f"{file}: ok")


@schemas.command("export")
def schemas_export(directory: Path) -> None:
    """Write the JSON Schema of the envelope, of every canonical document and of the partner API's
    request bodies (request.*) to DIRECTORY."""
    from schemas.api import body_schemas
    from schemas.documents import json_schemas

    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in (json_schemas() | body_schemas()).items():
        (directory / f"{name}.schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        out.print(f"wrote {directory / f'{name}.schema.json'}")


@app.command()
def demo(
    events: int = 200,
    workdir: Path = Path("var/demo"),
    serve: bool = typer.Option(False, help="go on serving the hub's API afterwards, until Ctrl-C"),
    port: int = typer.Option(8000, help="the port to serve on, with --serve"),
) -> None:
    """Run the hub end to end on the embedded default with simulated partners, and print a summary."""
    from sandbox.demo import run

    started = time.monotonic()
    ok = run(workdir=workdir, events=events, console=out, serve_port=port if serve else None)
    out.print(
        f"demo finished in {time.monotonic() - started:.1f} s; to look around with the CLI:\n"
        f"  export CASEHUB_CONFIG={workdir}/casehub.toml CASEHUB_DATABASE_URL=sqlite:///{workdir}/casehub.db\n"
        f"  casehub orders list; casehub dead-letters list; casehub transfers list"
    )
    if not ok:
        raise typer.Exit(FAILED)
