"""docs/partners.md works as written: its curl examples, run in bash against `casehub demo --serve`
with the tokens the demo prints, are each answered 2xx."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import wait_for
from tests.e2e.services import free_ports

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "partners.md"
CASEHUB = Path(sys.executable).parent / "casehub"


def examples() -> list[str]:
    """The guide's shell examples after the demo is started, in order."""
    tried = GUIDE.read_text(encoding="utf-8").split("## Try it against the demo", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", tried, re.S)
    assert "casehub demo --serve" in blocks[0]
    return blocks[1:]


def test_the_guides_curl_examples_are_answered_by_the_demos_hub(tmp_path):
    port = free_ports(1)[0]
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [
                str(CASEHUB),
                "demo",
                "--serve",
                "--port",
                str(port),
                "--events",
                "20",
                "--workdir",
                str(tmp_path / "demo"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ | {"COLUMNS": "200"},
        )
    try:
        exports = wait_for(
            lambda: demo.poll() is None and re.search(r"^export (HUB=.*)$", log.read_text(errors="replace"), re.M),
            timeout=300,
            interval=0.5,
            what=f"the demo to serve:\n{log.read_text(errors='replace')[-3000:]}",
        )
        environ = dict(pair.split("=", 1) for pair in exports[1].split())
        assert environ["HUB"] == f"http://127.0.0.1:{port}"
        answers = [_run(block, os.environ | environ, tmp_path) for block in examples()]
        order, acknowledgement, visits, feed, contracts = answers
        assert "cs-guide-0001" in json.loads(order)["accepted"]
        assert json.loads(acknowledgement)["order_id"] == "ORD-GUIDE-0001"
        assert json.loads(visits) == {"accepted": 1, "rejected": []}
        assert json.loads(feed)["events"]
        assert json.loads((tmp_path / "openapi.json").read_text())["openapi"].startswith("3.1")
        assert b"AcknowledgeOrder" in (tmp_path / "hub.wsdl").read_bytes()
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=60)
    assert demo.returncode == 0, log.read_text(errors="replace")[-3000:]


def _run(block: str, environ: dict[str, str], folder: Path) -> str:
    """The block's output, once bash runs it without an error (curl fails on a non-2xx answer);
    tried again for a while, as the acknowledgement waits for the order to reach its provider."""
    deadline = time.monotonic() + 30
    while True:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], env=environ, cwd=folder, capture_output=True, text=True
        )
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
    return result.stdout
