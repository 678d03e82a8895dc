"""A simulated mobile-reporting vendor: its polled API (`GET /api/v1/visits`), a pushing client,
and its daily CSV files; and a month of generated visits for a set of orders."""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from adapters.visit_codecs import encode_visit, encode_visit_batch, write_visit_csv
from sandbox.server import LiveServer
from sandbox.sftp_server import SandboxSftpServer
from schemas.money import STOCKHOLM, Period
from schemas.visits import Visit


def create_vendor_api(visits: list[Visit], *, token: str) -> FastAPI:
    """The vendor's API: pages of its visits after an opaque cursor. `app.state.fail_next` makes the
    next requests answer 503; `app.state.requests` lists the cursors asked for."""
    app = FastAPI()
    app.state.visits = visits
    app.state.fail_next = 0
    app.state.requests = []

    @app.get("/api/v1/visits")
    def page(request: Request, since: str = "", limit: int = 100) -> Response:
        app.state.requests.append(since)
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unknown token"}, status_code=401)
        if app.state.fail_next > 0:
            app.state.fail_next -= 1
            return JSONResponse({"error": "try later"}, status_code=503)
        start = int(since or 0)
        chunk = app.state.visits[start : start + limit]
        end = start + len(chunk)
        return JSONResponse(
            {
                "visits": [encode_visit(v) for v in chunk],
                "next_cursor": str(end),
                "has_more": end < len(app.state.visits),
            }
        )

    return app


def push(hub_url: str, token: str, visits: list[Visit], *, batch: int = 1000) -> list[dict]:
    """Push visits to the hub in batches; the hub's answers."""
    answers = []
    with httpx.Client(
        timeout=30, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ) as client:
        for start in range(0, len(visits), batch):
            response = client.post(
                f"{hub_url}/api/v1/visits", content=encode_visit_batch(visits[start : start + batch])
            )
            response.raise_for_status()
            answers.append(response.json())
    return answers


def drop_daily_file(folder: Path, vendor: str, day: dt.date, visits: list[Visit], seq: int = 1) -> Path:
    """Write the day's CSV file, then its done-file, as the contract says."""
    name = f"visits_{vendor}_{day:%Y%m%d}_{seq}.csv"
    buffer = io.BytesIO()
    write_visit_csv(visits, buffer)
    (folder / name).write_bytes(buffer.getvalue())
    (folder / f"{name}.done").write_bytes(b"")
    return folder / name


def month_of_visits(
    rng: random.Random,
    period: Period,
    customers: list[tuple[str, str, list[str]]],
    *,
    prefix: str,
    per_customer: int = 20,
) -> list[Visit]:
    """Generated visits for (provider_org, personnummer, service codes) in the period, with a realistic
    share of deviations: not approved, declined, manual confirmations, double staffing, edits."""
    made = []
    for number, (provider, person, services) in enumerate(customers):
        for n in range(per_customer):
            day = period.first_day + dt.timedelta(days=rng.randrange(period.days))
            hour = rng.choice([7, 8, 9, 10, 13, 16, 19, 21])
            start = dt.datetime.combine(day, dt.time(hour, rng.randrange(60)), STOCKHOLM)
            end = start + dt.timedelta(minutes=rng.choice([15, 20, 30, 45, 60]), seconds=rng.randrange(60))
            manual = rng.random() < 0.05
            made.append(
                Visit(
                    visit_id=f"{prefix}-{number:05d}-{n:03d}",
                    version=1,
                    provider_org=provider,
                    customer_pnr=person,
                    employee_id=f"E{rng.randrange(1000, 9999)}",
                    planned_start=start,
                    planned_end=end,
                    actual_start=start,
                    actual_end=end,
                    confirmation="manual" if manual else "nfc",
                    tag_id=None if manual else "04:A2:2B:9A:11:80",
                    manual_reason="the tag was missing" if manual else None,
                    services=rng.sample(services, k=rng.randint(1, len(services))),
                    double_staffing=rng.random() < 0.03,
                    declined=rng.random() < 0.02,
                    approved=rng.random() > 0.03,
                )
            )
    return made


class SimulatedVendors:
    """Three mobile-reporting vendors, one per channel: one pushes, one is polled, one drops files."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.push_token = f"sandbox-push-{random.Random(9).getrandbits(64):x}"
        self.poll_token = f"sandbox-poll-{random.Random(10).getrandbits(64):x}"
        self.api = create_vendor_api([], token=self.poll_token)
        self.files = Path(tempfile.mkdtemp(prefix="casehub-sftp-vendor-"))
        (self.files / "outbound").mkdir()
        self._stack = ExitStack()

    def __enter__(self) -> SimulatedVendors:
        self.polled = self._stack.enter_context(LiveServer(self.api))
        self.sftp = self._stack.enter_context(SandboxSftpServer(self.files))
        os.environ.update(
            {
                f"CASEHUB_SANDBOX_{self.tenant}_PUSH_VENDOR": self.push_token,
                f"CASEHUB_SANDBOX_{self.tenant}_POLL_VENDOR": self.poll_token,
                f"CASEHUB_SANDBOX_{self.tenant}_FILE_VENDOR_KEY": str(self.sftp.private_key_path),
            }
        )
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def partners_toml(self) -> str:
        return f"""
[[tenants.partners]]
id = "push-vendor"
kind = "visit_vendor"
token_env = "CASEHUB_SANDBOX_{self.tenant}_PUSH_VENDOR"

[[tenants.partners]]
id = "poll-vendor"
kind = "visit_vendor"
channel = {{ type = "rest", url = "{self.polled.url}", token_env = "CASEHUB_SANDBOX_{self.tenant}_POLL_VENDOR" }}

[[tenants.partners]]
id = "file-vendor"
kind = "visit_vendor"
channel = {{ type = "sftp", host = "{self.sftp.host}", port = {self.sftp.port}, username = "{self.sftp.username}", \
private_key_env = "CASEHUB_SANDBOX_{self.tenant}_FILE_VENDOR_KEY", host_key = "{self.sftp.host_key_line}", \
outbound_dir = "outbound" }}
"""

    def report(self, hub_url: str, visits: list[Visit], day: dt.date) -> None:
        """A third of the visits each: pushed now, offered for polling, dropped as the day's file."""
        push(hub_url, self.push_token, visits[0::3])
        self.api.state.visits = visits[1::3]
        drop_daily_file(self.files / "outbound", "file-vendor", day, visits[2::3])
