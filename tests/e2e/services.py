"""Private services for the fault-injection suite: a RabbitMQ node, a PostgreSQL cluster and a TCP
proxy of the suite's own, on free ports of 127.0.0.1, that a test may stop, kill, wipe or cut.

They never touch the machine's shared services (RabbitMQ on 5672, PostgreSQL's cluster "main" on
5432): each has its own name, ports, data, logs and configuration. Every process a server starts
carries an environment variable with a value of its own (MARKER_VAR): that, and descent from such a
process, is how `kill()`, `crash()` and `close()` find everything it started, and only that, even
what left its session (Erlang's erl_child_setup calls setsid). A watchdog process per server does
the same cleanup when the test process dies without closing it, even by SIGKILL.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path

MARKER_VAR = "CASEHUB_E2E_SERVICE"
START_TIMEOUT = 60.0
HAVE_PROC = os.path.isdir("/proc/self")
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


class ServiceMissing(RuntimeError):
    """A program a private service needs is not installed (the tests skip, or fail in CI)."""


class ServiceError(RuntimeError):
    """A private service did not do what it was asked; the message holds the tail of its log."""


# --- helpers -----------------------------------------------------------------------------------


def free_ports(count: int = 1) -> list[int]:
    """`count` distinct ports of 127.0.0.1 that were free a moment ago (bound to port 0 together)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def marked_pids(marker: str) -> list[int]:
    """The live processes whose environment holds MARKER_VAR=marker, and all their descendants: a
    PostgreSQL backend overwrites its environment with its title for ps (Linux; [] without /proc)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    parents: dict[int, int] = {}
    marked: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        try:
            state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
            if state in ("Z", "X"):  # a zombie is dead already; its parent (or init) reaps it
                continue
            parents[pid] = int(ppid)
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                marked.add(pid)
        except (OSError, ValueError):
            continue
    family = set(marked)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                grew = True
    return sorted(family)


def kill_marked(marker: str, timeout: float = 10.0, spare: int | None = None) -> set[int]:
    """SIGKILLs every process carrying `marker` (but `spare`) until none is left alive; returns their
    pids, which may stay zombies for a moment (see wait_reaped)."""
    deadline = time.monotonic() + timeout
    killed: set[int] = set()
    while pids := [pid for pid in marked_pids(marker) if pid != spare]:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed.update(pids)
        if time.monotonic() > deadline:
            raise ServiceError(f"processes {pids} survived SIGKILL for {timeout} s")
        time.sleep(0.02)
    return killed


def wait_reaped(pids: set[int], timeout: float = 10.0) -> None:
    """Waits until none of `pids` exists any more, not even as a zombie. A killed postmaster's zombie
    still answers kill(pid, 0), and PostgreSQL refuses to start while its pid in postmaster.pid does."""
    deadline = time.monotonic() + timeout
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _clean_up(marker: str, folders: list[Path], watchdog: subprocess.Popen) -> None:
    """What close() and the finalizer end with: nothing of the server left running, its data removed."""
    try:
        kill_marked(marker)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        try:
            watchdog.stdin.close()  # it wakes, finds nothing left to do and exits
            watchdog.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _start_watchdog(marker: str) -> subprocess.Popen:
    """A process of its own session that waits for this one to close its stdin, as it does when it
    exits in any way, SIGKILL included, and then kills every process carrying `marker` and removes
    the folders it was sent, one a line. Without it a test run killed by a timeout or by CI would
    leave a RabbitMQ node or a PostgreSQL cluster running."""
    return subprocess.Popen(
        [sys.executable, "-I", __file__, "--watchdog", marker],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )


def _watchdog(marker: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    folders = [line.rstrip("\n") for line in sys.stdin]  # until EOF: the parent closed it, or died
    try:
        kill_marked(marker)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _tail(*paths: Path, lines: int = 40) -> str:
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        parts.append(f"--- {path} (last {len(text)} lines)\n" + "\n".join(text))
    return "\n".join(parts) or "(no log written)"


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen, timeout: float, what: str, log: Callable[[], str]
) -> None:
    """Polls `ready` until it holds; a ServiceError with the log's tail when `process` exits or on timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise ServiceError(f"{what}: the process exited with code {process.returncode}\n{log()}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what}: not ready after {timeout:.0f} s\n{log()}")
        time.sleep(0.1)


def _port_taken(log: str) -> bool:
    """Whether a failed start's log says its port was in use."""
    return any(sign in log.lower() for sign in ("eaddrinuse", "address already in use", "dist_port_already_used"))


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class _Managed:
    """What the two servers share: a marker, one started process in its own session, timings."""

    def __init__(self, kind: str) -> None:
        self.timings: dict[str, float] = {}  # seconds the last start, stop, ... took
        self._marker = f"{kind}-{uuid.uuid4().hex}"
        self._process: subprocess.Popen | None = None
        self._env: dict[str, str] = {}
        self._started_once = False
        self._closed = False
        self._leftovers: list[Path] = []  # folders to remove, at close() or by the finalizer
        self._watchdog = _start_watchdog(self._marker)
        # Kills whatever is left if the object is collected or the interpreter exits without close().
        self._finalizer = weakref.finalize(self, _clean_up, self._marker, self._leftovers, self._watchdog)

    def close(self) -> None:
        """Stops the server (its own `stop`) and removes its data, not its logs; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            self._kill_all()
            self._finalizer()  # removes the data

    def _remove_at_close(self, folder: Path) -> None:
        """Registers a folder of data for close(), the finalizer and the watchdog to remove."""
        self._leftovers.append(folder)
        self._watchdog.stdin.write(f"{folder}\n")
        self._watchdog.stdin.flush()

    @property
    def running(self) -> bool:
        """Whether the server's process is alive (not whether it accepts connections yet)."""
        return self._process is not None and self._process.poll() is None

    def processes(self) -> list[int]:
        """The pids of every live process this server started."""
        return marked_pids(self._marker)

    def _start(self, argv: list[str], cwd: Path, log: Path, ready: Callable[[], bool]) -> None:
        """Starts the server in a session of its own, its output appended to `log`, and waits until
        `ready`; a ServiceError, with nothing left running, when it does not get there. Tried up to
        three times while _retry(), shown what this try wrote, says another try may succeed."""
        if self._closed:
            raise ServiceError(f"{type(self).__name__} is closed")
        began = time.monotonic()
        for attempt in range(3):
            offset = log.stat().st_size if log.exists() else 0
            with log.open("ab") as out:
                self._process = subprocess.Popen(
                    argv,
                    env=self._env | {MARKER_VAR: self._marker},
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                _wait_until(ready, self._process, self.start_timeout, self._describe(), self.log_tail)
                break
            except ServiceError:
                self._kill_all()
                with log.open("rb") as written:
                    written.seek(offset)
                    output = written.read().decode(errors="replace")
                if attempt == 2 or not self._retry(output):
                    raise
            except BaseException:
                self._kill_all()
                raise
        self._started_once = True
        self.timings["start"] = time.monotonic() - began

    def _retry(self, output: str) -> bool:
        """Whether a failed start is worth another try (after mending what `output` says went wrong)."""
        return False

    def _describe(self) -> str:
        return type(self).__name__

    def log_tail(self) -> str:
        """The last lines of the server's log, for error messages."""
        raise NotImplementedError

    def _kill_all(self) -> None:
        """SIGKILL of every process this server started, then reaps the one it started itself."""
        process = self._process
        leader = process.pid if process is not None and process.poll() is None else None
        pinned = self._pid_to_reap()
        # All but the session's leader (the start script, runuser) first: alive, it reaps its child at
        # once and then exits by itself; an orphan waits for init, which here reaps only every second or so.
        kill_marked(self._marker, spare=leader)
        if process is not None:
            try:
                if not HAVE_PROC:
                    raise subprocess.TimeoutExpired(process.args, 0)
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)  # not reaped yet: the group id is still ours
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        kill_marked(self._marker)
        if pinned is not None:
            wait_reaped({pinned})
        self._process = None

    def _pid_to_reap(self) -> int | None:
        """A pid that must be gone, not even a zombie, before the server can start again."""
        return None

    def _wait_exit(self, timeout: float) -> bool:
        """Waits for the started process and then for the rest of the marked ones; False on timeout."""
        deadline = time.monotonic() + timeout
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        while self.processes():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        self._process = None
        return True


# --- RabbitMQ ----------------------------------------------------------------------------------


def rabbitmq_scripts() -> tuple[Path, Path]:
    """The real rabbitmq-server and rabbitmqctl scripts, not Debian's wrapper that /usr/sbin links to
    (that one cds to /var/lib/rabbitmq and `su`s to the rabbitmq user, whose cookie is the shared node's)."""
    found = shutil.which("rabbitmq-server", path=SBIN_PATH)
    if found is None:
        raise ServiceMissing("RabbitMQ is not installed: no rabbitmq-server (apt-get install rabbitmq-server)")
    server = Path(found).resolve()
    if server.name == "rabbitmq-script-wrapper":
        server = server.with_name("rabbitmq-server")
    ctl = server.with_name("rabbitmqctl")
    if not (os.access(server, os.X_OK) and os.access(ctl, os.X_OK)):
        raise ServiceMissing(f"RabbitMQ's scripts are not where expected: {server}, {ctl}")
    if shutil.which("erl") is None:
        raise ServiceMissing("Erlang's erl is not on PATH, which rabbitmq-server needs")
    return server, ctl


class PrivateRabbitMQ(_Managed):
    """A RabbitMQ node of the suite's own, for tests that stop, kill or wipe the broker.

    Node `casehub-e2e-<port>@localhost`, AMQP and Erlang distribution on free ports of 127.0.0.1,
    data, logs, config and an Erlang cookie of its own under `base_dir` (nothing of /etc/rabbitmq is
    read), no plugins. It runs as the current user. rabbitmqctl is always called with `-n` and the
    private cookie, so it cannot even authenticate to the machine's shared node.
    """

    def __init__(self, base_dir: Path, start_timeout: float = START_TIMEOUT) -> None:
        self.server, self.ctl = rabbitmq_scripts()
        super().__init__("rabbitmq")
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="rabbitmq-", dir=base_dir))
        self.data_dir = self.dir / "data"
        self.log_dir = self.dir / "log"
        self.console_log = self.dir / "console.log"
        self.pid_file = self.dir / "rabbitmq.pid"
        self._remove_at_close(self.data_dir)
        self._home = self.dir / "home"
        self._home.mkdir()
        cookie = self._home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        (self.dir / "enabled_plugins").write_text("")
        (self.dir / "rabbitmq-env.conf").write_text("")  # instead of /etc/rabbitmq/rabbitmq-env.conf
        self._use_ports(*free_ports(2))

    def _use_ports(self, port: int, dist_port: int) -> None:
        self.port, self.dist_port = port, dist_port
        self.nodename = f"casehub-e2e-{port}@localhost"
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{port}\n"
            "disk_free_limit.absolute = 1MB\n"  # no disk alarm on a small temporary file system
            "log.file.level = info\n"
        )
        self._env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))} | {
            "HOME": str(self._home),  # the private cookie, for the node and for rabbitmqctl
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.data_dir),  # 3.10 knows no RABBITMQ_DATA_DIR
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),  # does not exist
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_CRASH_DUMP": str(self.dir / "erl_crash.dump"),
        }

    @property
    def url(self) -> str:
        """The AMQP URL of the node's default virtual host, as guest."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self) -> None:
        """Starts the node; returns once an AMQP connection as guest succeeds (ServiceError after the timeout)."""
        if self.running:
            return
        self.data_dir.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self._start([str(self.server)], self.dir, self.console_log, self._accepts_amqp)

    def stop(self) -> None:
        """Stops the whole node gracefully (`rabbitmqctl -n <node> stop`); SIGTERM, then SIGKILL, if that fails."""
        if self._process is None:
            return
        if not self.running:
            self._kill_all()  # it died by itself: leave nothing of it behind
            return
        began = time.monotonic()
        stopped = self.rabbitmqctl("stop", timeout=60).returncode == 0 and self._wait_exit(60)
        if not stopped and self.running:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)  # the script traps it and stops the VM gracefully
                stopped = self._wait_exit(30)
            except ProcessLookupError:
                pass
        if not stopped:
            self._kill_all()
        self.timings["stop"] = time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL of the node's beam process (a crash), then of anything of it that is left; epmd is not
        touched: it forgets the node by itself when the node's connection to it closes."""
        if self._process is None:
            return
        began = time.monotonic()
        beam = self.beam_pid()
        if beam is not None:
            try:
                os.kill(beam, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._kill_all()
        self.timings["kill"] = time.monotonic() - began

    def reset(self) -> None:
        """Stops the node, wipes its data (every exchange, queue, message and user it had) and starts it again."""
        began = time.monotonic()
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.start()
        self.timings["reset"] = time.monotonic() - began

    def beam_pid(self) -> int | None:
        """The OS pid of the node's Erlang VM, from its pid file."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def log_tail(self) -> str:
        """The last lines of the node's console output and log file."""
        return _tail(self.console_log, *sorted(self.log_dir.glob("*.log")))

    def _describe(self) -> str:
        return f"RabbitMQ node {self.nodename} on port {self.port}"

    def _retry(self, output: str) -> bool:
        if "duplicate_node_name" in output:  # epmd still lists the node killed a moment ago
            time.sleep(1)
            return True
        if not self._started_once and _port_taken(output):
            # A port chosen as free was taken before the node bound it: other ports, a clean slate.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._use_ports(*free_ports(2))
            self.data_dir.mkdir()
            return True
        return False

    def rabbitmqctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Runs `rabbitmqctl -n <this node> args` with the node's cookie (e.g. "add_vhost", name);
        returns its result (text), code 124 when it timed out. Never the default node: here that is
        the shared one."""
        try:
            return subprocess.run(
                [str(self.ctl), "-n", self.nodename, *args],
                env=self._env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as expired:
            return subprocess.CompletedProcess(expired.cmd, 124, "", f"timed out after {timeout} s")

    _rabbitmqctl = rabbitmqctl  # the name it had first

    def _accepts_amqp(self) -> bool:
        if not _port_open(self.port):
            return False
        import pika  # here: the module's other classes do without it

        parameters = pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=2")
        try:
            pika.BlockingConnection(parameters).close()
            return True
        except Exception:  # refused, reset, handshake timed out, broker still booting: not yet
            return False


# --- PostgreSQL --------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """The newest PostgreSQL's bin folder holding initdb, pg_ctl and postgres."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb", path=SBIN_PATH)
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ServiceMissing(
        "PostgreSQL's server is not installed: no initdb, pg_ctl and postgres (apt-get install postgresql)"
    )


class PrivatePostgres(_Managed):
    """A PostgreSQL cluster of the suite's own, for tests that crash the database under a client.

    initdb once (trust authentication, fsync off), then `postgres` on a free port of 127.0.0.1 that
    stays the same across crash() and start(), its unix socket in its own folder. As root, every
    PostgreSQL program runs as the `postgres` user, with the data in a folder that user owns.
    """

    def __init__(self, base_dir: Path, start_timeout: float = START_TIMEOUT) -> None:
        self.bindir = postgres_bindir()
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser", path=SBIN_PATH)
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceMissing("running as root and there is no `postgres` user to run PostgreSQL as") from None
            if runuser is None:
                raise ServiceMissing("running as root and there is no runuser to run PostgreSQL as `postgres`")
            self._as_postgres = [runuser, "-u", "postgres", "--"]
        super().__init__("postgres")
        self.start_timeout = start_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="postgres-", dir=base_dir))
        self.port = free_ports(1)[0]
        self.log_file = self.dir / "postgres.log"
        self.home = self._private_folder()
        self._remove_at_close(self.home)
        self.data_dir = self.home / "data"
        self.socket_dir = self.home / "socket"
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the cluster's `postgres` database, as the `postgres` role."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def conninfo(self) -> str:
        """The same for psycopg.connect()."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def start(self) -> None:
        """Starts the cluster (initdb on the first start); returns once a connection succeeds.
        After a crash() PostgreSQL recovers from its WAL first."""
        if self.running:
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._start(
            [*self._as_postgres, str(self.bindir / "postgres"), "-D", str(self.data_dir)],
            self.home,
            self.log_file,
            self._accepts_connections,
        )

    def crash(self) -> None:
        """SIGKILL of the postmaster and all its children at once: a real crash, recovered from on start()."""
        if self._process is None:
            return
        began = time.monotonic()
        self._kill_all()
        self.timings["crash"] = time.monotonic() - began

    def stop(self) -> None:
        """A fast shutdown (`pg_ctl stop -m fast`): clients are disconnected, the cluster checkpoints."""
        if self._process is None:
            return
        if not self.running:
            self._kill_all()
            return
        began = time.monotonic()
        stop = subprocess.run(
            [
                *self._as_postgres,
                str(self.bindir / "pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
            ],
            env=self._env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
        if stop.returncode != 0 or not self._wait_exit(30):
            self._kill_all()
        self.timings["stop"] = time.monotonic() - began

    def log_tail(self) -> str:
        """The last lines of the server's log."""
        return _tail(self.log_file)

    def _describe(self) -> str:
        return f"PostgreSQL on port {self.port}"

    def _retry(self, output: str) -> bool:
        if not self._started_once and _port_taken(output):
            # The port chosen as free was taken before the first start: another one, kept from now on.
            self.port = free_ports(1)[0]
            with (self.data_dir / "postgresql.conf").open("a") as conf:
                conf.write(f"port = {self.port}\n")
            return True
        return False

    def _pid_to_reap(self) -> int | None:
        # PostgreSQL refuses to start while the pid in postmaster.pid answers kill(pid, 0), as a zombie does.
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _initdb(self) -> None:
        began = time.monotonic()
        initdb = subprocess.run(
            [
                *self._as_postgres,
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            env=self._env | {MARKER_VAR: self._marker},
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if initdb.returncode != 0:
            raise ServiceError(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}\n{initdb.stderr}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# casehub e2e: a private cluster for crash tests\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\n"  # a killed process loses nothing written; only the OS crashing would
                "full_page_writes = off\n"
                "max_connections = 50\n"
                "shared_buffers = 32MB\n"
                "logging_collector = off\n"
            )
        self.timings["initdb"] = time.monotonic() - began

    def _private_folder(self) -> Path:
        """A folder under base_dir that the postgres user owns, or, when it cannot reach base_dir (pytest's
        /tmp/pytest-of-root is 0700) or the socket's path would be too long, a temporary one it owns."""
        folder = self.dir / "pg"
        folder.mkdir(mode=0o700)
        self._own(folder)
        too_long = len(str(folder / "socket" / f".s.PGSQL.{self.port}")) > 100  # sun_path holds 107
        if not too_long and self._reachable(folder):
            (folder / "socket").mkdir()
            self._own(folder / "socket")
            return folder
        folder.rmdir()
        folder = Path(tempfile.mkdtemp(prefix="casehub-e2e-pg-"))
        self._own(folder)
        (folder / "socket").mkdir()
        self._own(folder / "socket")
        return folder

    def _own(self, path: Path) -> None:
        if self._as_postgres:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def _reachable(self, folder: Path) -> bool:
        if not self._as_postgres:
            return True
        return (
            subprocess.run(
                [*self._as_postgres, "test", "-w", str(folder)], stdin=subprocess.DEVNULL, capture_output=True
            ).returncode
            == 0
        )

    def _accepts_connections(self) -> bool:
        if not _port_open(self.port):
            return False
        import psycopg

        try:
            psycopg.connect(self.conninfo, connect_timeout=2).close()
            return True
        except psycopg.OperationalError:  # "the database system is starting up" and the like
            return False


# --- TCP proxy ---------------------------------------------------------------------------------


class _Link:
    """One proxied connection: the client's socket and the target's; cut() closes both, once."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self._lock = threading.Lock()
        self._ended = 0  # directions that reached EOF
        self.cut_done = False

    def end_one_way(self, sink: socket.socket) -> None:
        """EOF in one direction: passes the half-close on; both directions ended closes the link."""
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with self._lock:
            self._ended += 1
            both = self._ended == 2
        if both:
            self.cut()

    def cut(self) -> None:
        with self._lock:
            if self.cut_done:
                return
            self.cut_done = True
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv() on it
            except OSError:
                pass
            sock.close()


class TcpProxy:
    """A threaded TCP proxy from a free port of 127.0.0.1 to `target`, which can cut connections:
    after a number of bytes in one direction (for new connections), all at once, or not at all."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.accepted = 0  # connections accepted so far
        self.bytes_from_server = 0  # forwarded so far, over every connection: to pick cut_after's numbers
        self.bytes_from_client = 0
        self._limits: tuple[int | None, int | None] = (None, None)  # (server_bytes, client_bytes)
        self._links: set[_Link] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so the accept loop sees close()
        self.port: int = self._listener.getsockname()[1]
        self._accepter = self._thread(self._accept_loop, "accept")

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    def cut_after(self, server_bytes: int | None = None, client_bytes: int | None = None) -> None:
        """For new connections: forward only that many bytes from the server (to the client), or from the
        client (to the server), then close both sides. None: no limit in that direction."""
        self._limits = (server_bytes, client_bytes)

    def cut_all(self) -> None:
        """Closes every open connection now."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.cut()

    def heal(self) -> None:
        """Plain forwarding again for new connections."""
        self._limits = (None, None)

    def close(self) -> None:
        """Stops listening, cuts every connection and joins every thread; safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._accepter.join(timeout=5)  # it sees _closed within its 0.1 s accept timeout
        self._listener.close()
        deadline = time.monotonic() + 10
        while True:
            self.cut_all()
            with self._lock:
                threads = list(self._threads)
            if not threads or time.monotonic() > deadline:
                break
            for thread in threads:
                thread.join(timeout=1)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _thread(self, target, name: str, *args) -> threading.Thread:
        thread = threading.Thread(
            target=self._run, args=(target, *args), name=f"tcpproxy-{self.port}-{name}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _run(self, target, *args) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.accepted += 1
            self._thread(self._serve, "link", client, self._limits)

    def _serve(self, client: socket.socket, limits: tuple[int | None, int | None]) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        link = _Link(client, server)
        with self._lock:
            if self._closed.is_set():
                link.cut()
                return
            self._links.add(link)
        server_bytes, client_bytes = limits
        if 0 in (server_bytes, client_bytes):
            link.cut()
        up = threading.Thread(
            target=self._pump,
            args=(link, client, server, client_bytes, "bytes_from_client"),
            daemon=True,
            name=f"tcpproxy-{self.port}-up",
        )
        up.start()
        try:
            self._pump(link, server, client, server_bytes, "bytes_from_server")
            up.join()
        finally:
            link.cut()
            with self._lock:
                self._links.discard(link)

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket, limit: int | None, counter: str) -> None:
        """Copies source to sink; passes EOF on as a half-close; on an error, or once `limit` bytes have
        passed, cuts the whole link."""
        passed = 0
        try:
            while not link.cut_done:
                data = source.recv(65536)
                if not data:
                    link.end_one_way(sink)
                    return
                if limit is not None:
                    data = data[: limit - passed]
                with self._lock:  # counted before it is sent: a reader never sees bytes not counted yet
                    setattr(self, counter, getattr(self, counter) + len(data))
                sink.sendall(data)
                passed += len(data)
                if limit is not None and passed >= limit:
                    break
        except OSError:
            pass
        link.cut()


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    _watchdog(sys.argv[2])
