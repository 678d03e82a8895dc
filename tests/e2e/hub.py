"""The hub under test as IT operations runs it, and the case system as it talks to the hub.

`HubProcesses` runs `casehub serve` (and, at scale, `casehub worker`) as processes of their own,
which a test kills with SIGKILL and starts again. `CaseSystemStream` posts a bounded stream of
events over HTTP from a process of its own, each again with the same id until it is answered 2xx (as a case
system does), reads the feed between posts, and keeps the status and time of every answer.
`Outcome` reads what the hub did with the stream from its store.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from core.redaction import PERSONNUMMER
from core.store.tables import dead_letters, messages, processed
from tests.e2e.services import free_ports

CASEHUB = Path(sys.executable).parent / "casehub"


class HubProcesses:
    """`casehub serve` on a free port and any `casehub worker`s, with one log file each."""

    def __init__(
        self, workdir: Path, *, database_url: str, broker_url: str, config: str, environ: dict[str, str]
    ) -> None:
        self.workdir = workdir
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        config_path = workdir / "casehub.toml"
        config_path.write_text(config, encoding="utf-8")
        self.env = (
            os.environ
            | environ
            | {
                "CASEHUB_DATABASE_URL": database_url,
                "CASEHUB_BROKER_URL": broker_url,
                "CASEHUB_CONFIG": str(config_path),
                "CASEHUB_NETWORK_TIMEOUT": "5",
                # a fault test's outages are short: retries come soon and last through a minute-long outage
                "CASEHUB_RETRY_MAX": "200",
                "CASEHUB_RETRY_MIN_BACKOFF_MS": "200",
                "CASEHUB_RETRY_MAX_BACKOFF_MS": "2000",
            }
        )
        self.processes: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = {}

    def start(self, name: str) -> subprocess.Popen:
        """Start `serve` or `worker` (again); for `serve`, return once it answers."""
        command = (
            [str(CASEHUB), "serve", "--port", str(self.port)]
            if name == "serve"
            else [str(CASEHUB), "worker", "--threads", "8"]
        )
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes[name] = process
        self.starts[name] = self.starts.get(name, 0) + 1
        if name == "serve":
            self._wait_until_serving(process)
        return process

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, no flush, as a crash or the OOM killer."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes.values())

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.workdir.glob("*.log")))

    def _wait_until_serving(self, process: subprocess.Popen, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"casehub serve exited with {process.returncode}:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"casehub serve did not answer in {timeout} s:\n{self.logs()[-3000:]}")


@dataclass
class Answer:
    at: float
    what: str  # "post" or "feed"
    status: int  # 0: no answer (connection refused, timeout)
    seconds: float


@dataclass
class CaseSystemStream:
    """Posts `events` one request at a time, `rate` per second, each until it is answered 2xx.

    It runs in a process of its own, so that an answer's time is the hub's and the network's: in
    a thread of the test's process it waited its turn for the GIL behind the simulated providers
    and proxies, which are busiest just when the providers come back (a post measured 1.4 s on a
    loaded CI run, and the stream fell to 594 posts in a minute from the 900 asked)."""

    url: str
    token: str
    events: list[dict]
    rate: float
    answers: list[Answer] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")  # not fork: the test's process runs threads
        self._reports = spawn.Queue()
        self._stop = spawn.Event()
        self._process = spawn.Process(
            target=_stream,
            args=(self.url, self.token, self.events, self.rate, self._reports, self._stop),
            name="case-system-stream",
            daemon=True,
        )
        self._collector = threading.Thread(target=self._collect, name="case-system-answers", daemon=True)

    def start(self) -> CaseSystemStream:
        self._process.start()
        self._collector.start()
        return self

    def wait(self, timeout: float) -> None:
        self._process.join(timeout)
        if self._process.is_alive():
            self._stop.set()
            self._process.join(10)
            raise AssertionError(
                f"the case system had {len(self.events) - len(self.answered)} events unanswered after {timeout} s"
            )
        self._collector.join(10)

    def echoed(self) -> set[str]:
        """The events answered 2xx that the echo step handles (the case events, not the orders)."""
        kinds = {event["id"]: event["type"] for event in self.events}
        return {id for id in self.answered if kinds[id] == "case.event_recorded"}

    def posted_while(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.at <= end]

    def _collect(self) -> None:
        """The stream's reports as they come: an Answer, the id of an event answered 2xx, None at its end."""
        while (report := self._reports.get()) is not None:
            if isinstance(report, Answer):
                self.answers.append(report)
            else:
                self.answered.append(report)


def _stream(url: str, token: str, events: list[dict], rate: float, reports, stop) -> None:
    """The case system's side of `CaseSystemStream`, in its process: every answer reported, with
    its time on the machine's monotonic clock, which the test's process shares."""

    def call(what: str, request) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = request()
        except httpx.HTTPError:
            response = None
        status = response.status_code if response is not None else 0
        reports.put(Answer(started, what, status, time.monotonic() - started))
        return response

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
        cursor = 0
        for event in events:
            started = time.monotonic()
            while not stop.is_set():
                posted = call("post", lambda: http.post("/api/v1/events", json=event))
                if posted is not None and posted.is_success:
                    reports.put(event["id"])
                    break
                stop.wait(0.2)
            if stop.is_set():
                break
            read = call("feed", lambda: http.get("/api/v1/feed", params={"since": cursor, "limit": 100}))
            if read is not None and read.status_code == 200:
                cursor = read.json()["next_cursor"]
            stop.wait(max(0.0, 1 / rate - (time.monotonic() - started)))
    reports.put(None)


class Outcome:
    """What the hub's store says it did with the stream (read with an engine of the test's own)."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)

    def count(self, table, *where) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(table).where(*where))

    def echoed(self) -> int:
        return self.count(processed, processed.c.step == "echo")

    def receipts_by_event(self) -> dict[str, int]:
        """How many receipts the echo step sent the case system for each event."""
        with self.engine.connect() as conn:
            found = conn.scalars(
                select(messages.c.envelope).where(messages.c.direction == "out", messages.c.type == "hub.receipt")
            )
            counts: dict[str, int] = {}
            for envelope in found:
                cause = json.loads(envelope)["causation_id"]
                counts[cause] = counts.get(cause, 0) + 1
        return counts

    def dead_letters(self) -> list:
        with self.engine.connect() as conn:
            return conn.execute(select(dead_letters.c.step, dead_letters.c.kind, dead_letters.c.reason)).all()

    def close(self) -> None:
        self.engine.dispose()


def assert_processed_exactly_once(outcome: Outcome, stream: CaseSystemStream) -> None:
    """Every event answered 2xx had its effect once: one receipt each, none twice, none for others."""
    receipts = outcome.receipts_by_event()
    answered = stream.echoed()
    missing = answered - receipts.keys()
    twice = {event: n for event, n in receipts.items() if n > 1}
    assert not missing, f"{len(missing)} events answered 2xx were never processed, e.g. {sorted(missing)[:3]}"
    assert not twice, f"{len(twice)} events were processed more than once, e.g. {list(twice.items())[:3]}"
    assert outcome.dead_letters() == []


def assert_said(hub: HubProcesses, *phrases: str, most: int = 20, within: float = 30) -> None:
    """The processes said each phrase (that something stopped, that it works again) within `within`
    seconds, and the whole fault took at most `most` lines at WARNING or above (not a traceback per
    attempt). A loop that nothing woke (an idle AMQP consumer) says it works again at its next
    attempt, up to core.outage.MAX_BACKOFF after the outage, which may be after the traffic settled."""
    deadline = time.monotonic() + within
    while (missing := [p for p in phrases if p not in hub.logs()]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not missing, f"no process said {missing[0]!r} within {within} s"
    loud = [line for line in hub.logs().splitlines() if re.match(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) ", line)]
    assert len(loud) <= most, "\n".join(loud)


def outage_of(*loops: str) -> list[str]:
    return [f"{loop} {said}" for loop in loops for said in ("stopped", "works again")]


def assert_no_personnummer(text: str) -> None:
    found = PERSONNUMMER.search(text)
    assert found is None, f"a personnummer in a log: ...{text[max(0, found.start() - 200) : found.end() + 50]}..."
