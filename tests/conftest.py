"""Shared test setup: one torch thread per test process keeps runs fast and deterministic on 2 cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


# --- Real services for tests marked `postgres` / `slurm` (scripts in tests/cluster/) ---------
import fcntl  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

CLUSTER_SCRIPTS = Path(__file__).parent / "cluster"
SERVICE_SECONDS: dict[str, float] = {}


def _unavailable(reason: str) -> None:
    """Skip with the reason; under CI=true fail instead, because CI installs every service."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: service tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def _run_script(name: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run tests/cluster/<name> with arguments; never raises on a non-zero exit."""
    return subprocess.run([str(CLUSTER_SCRIPTS / name), *args], capture_output=True, text=True, timeout=timeout)


def _why(proc: subprocess.CompletedProcess) -> str:
    """The last meaningful line a failed script printed."""
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on loopback for this session: {"url": SQLAlchemy URL, "restart": fn(down_s)}."""
    folder = tempfile.mkdtemp(prefix="rbvit-pg-")  # not tmp_path: the server runs as `postgres` when we are root
    port = str(_free_port())
    t0 = time.perf_counter()
    proc = _run_script("postgres-local.sh", "start", folder, port, timeout=120)
    if proc.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"PostgreSQL could not start: {_why(proc)}")
    SERVICE_SECONDS["postgres start"] = time.perf_counter() - t0

    def restart(down_s: float) -> None:
        """Stop the server (its clients lose their connections), keep it down `down_s` seconds, start it again."""
        assert _run_script("postgres-local.sh", "stop", folder, timeout=60).returncode == 0
        time.sleep(down_s)
        again = _run_script("postgres-local.sh", "start", folder, port, timeout=120)
        assert again.returncode == 0, _why(again)

    yield {"url": proc.stdout.strip().splitlines()[-1], "restart": restart}
    _run_script("postgres-local.sh", "stop", folder, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    """The SQLAlchemy URL of the session's PostgreSQL server."""
    return postgres_server["url"]


@pytest.fixture(scope="session")
def slurm_cluster():
    """The single-node SLURM on 127.0.0.1 (started unless up; stopped at the end if this session started it)."""
    with open(os.path.join(tempfile.gettempdir(), "robustbench-vit-slurm.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one starts it, the others find it up
        started = _run_script("slurm-local.sh", "status", timeout=30).returncode != 0
        if started:
            t0 = time.perf_counter()
            proc = _run_script("slurm-local.sh", "start")
            if proc.returncode != 0:
                _unavailable(f"SLURM could not start: {_why(proc)}")
            SERVICE_SECONDS["slurm start"] = time.perf_counter() - t0
    yield {"partition": "debug", "cluster": "localcluster", "cpus": os.cpu_count()}
    if started and "PYTEST_XDIST_WORKER" not in os.environ:  # other workers may still use it
        t0 = time.perf_counter()
        _run_script("slurm-local.sh", "stop", timeout=120)
        SERVICE_SECONDS["slurm stop"] = time.perf_counter() - t0


@pytest.fixture(autouse=True)
def _services_for_markers(request):
    """Tests marked `postgres` / `slurm` get their service (or are skipped with the reason); a slurm test's
    leftover jobs are cancelled after it."""
    for marker, fixture in (("postgres", "postgres_url"), ("slurm", "slurm_cluster")):
        if request.node.get_closest_marker(marker):
            request.getfixturevalue(fixture)
    yield
    # a failed test's jobs must not hold the node for the next one (under xdist, other workers' jobs may be queued)
    if request.node.get_closest_marker("slurm") and "PYTEST_XDIST_WORKER" not in os.environ:
        ids = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True)


def pytest_terminal_summary(terminalreporter):
    """Report how long the real services took to start."""
    if SERVICE_SECONDS:
        terminalreporter.write_line(
            "services: " + ", ".join(f"{k} {v:.1f} s" for k, v in SERVICE_SECONDS.items()))
