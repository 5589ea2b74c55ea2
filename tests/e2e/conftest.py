"""End-to-end harness: a real ``kubeling up`` subprocess driven by the real kubectl.

``kubeling_up`` starts ``kubeling up --data-dir <tmp> --listen 127.0.0.1:0``, waits for its
one ready line (which names the URL and the kubeconfig), and yields a ``Kubeling`` handle
whose ``kubectl(...)`` runs the kubectl on PATH with that kubeconfig and a private cache
directory: the dispatcher in front of kubectl caches discovery for six hours, and a shared
cache would hide what the server really answers. At the end the server gets SIGTERM and must
exit 0.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
READY = re.compile(r"^kubeling is ready at (https://\S+) \(kubeconfig: (.+)\)$")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def kubeling_command() -> list[str]:
    return [sys.executable, "-m", "kubeling.cli"]


def kubectl_path() -> str:
    venv = ROOT / ".venv" / "bin" / "kubectl"
    if venv.exists():
        return str(venv)
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed")
    return found


@dataclass
class Kubeling:
    """A running ``kubeling up``."""

    proc: subprocess.Popen[str]
    url: str
    kubeconfig: pathlib.Path
    data_dir: pathlib.Path
    cache_dir: pathlib.Path
    output: list[str] = field(default_factory=list)

    @property
    def token(self) -> str:
        return (self.data_dir / "pki" / "admin.token").read_text().strip()

    @property
    def ca_file(self) -> pathlib.Path:
        return self.data_dir / "pki" / "ca.crt"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            kubectl_path(),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            *args,
        ]
        env = {**os.environ, "HOME": str(self.cache_dir)}
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def ok(self, *args: str, input: str | None = None) -> str:
        """Run kubectl, assert exit 0, return stdout."""
        return self.kubectl(*args, input=input, check=True).stdout


_networks = itertools.count()


def private_pod_network() -> dict[str, str]:
    """A bridge and /24 of this cluster's own: two clusters alive at once (a module's shared
    server and a test's own) must not share a bridge, its pod addresses or its DNS port."""
    n = next(_networks)
    pid = os.getpid()
    return {
        "KUBELING_POD_BRIDGE": f"kle{pid % 100000}x{n}",
        "KUBELING_POD_CIDR": f"10.{150 + pid % 50}.{(pid // 50 + n) % 256}.0/24",
    }


def start_kubeling(data_dir: pathlib.Path, cache_dir: pathlib.Path, *extra: str) -> Kubeling:
    cmd = [*kubeling_command(), "up", f"--data-dir={data_dir}", "--listen=127.0.0.1:0", *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if "KUBELING_POD_BRIDGE" not in env:
        env.update(private_pod_network())
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=data_dir.parent,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    ready: list[re.Match[str]] = []
    got_ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = READY.match(line.rstrip("\n"))
            if m and not ready:
                ready.append(m)
                got_ready.set()
        got_ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not got_ready.wait(START_TIMEOUT) or not ready:
        proc.kill()
        proc.wait()
        raise AssertionError("kubeling up did not become ready:\n" + "\n".join(lines))
    m = ready[0]
    return Kubeling(
        proc=proc,
        url=m.group(1),
        kubeconfig=pathlib.Path(m.group(2)),
        data_dir=data_dir,
        cache_dir=cache_dir,
        output=lines,
    )


def stop_kubeling(k: Kubeling) -> int:
    if k.proc.poll() is None:
        k.proc.send_signal(signal.SIGTERM)
    try:
        return k.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        k.proc.kill()
        k.proc.wait()
        raise


@pytest.fixture
def kubeling_dirs(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    data = tmp_path / "data"
    cache = tmp_path / "kube-cache"
    cache.mkdir()
    return data, cache


@pytest.fixture
def kubeling_up(kubeling_dirs: tuple[pathlib.Path, pathlib.Path]) -> Iterator[Kubeling]:
    data, cache = kubeling_dirs
    k = start_kubeling(data, cache)
    try:
        yield k
    finally:
        code = stop_kubeling(k)
        assert code == 0, f"kubeling up exited {code}:\n" + "\n".join(k.output)


@pytest.fixture(scope="module")
def shared_kubeling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubeling]:
    """One server for a module's read-mostly tests (each test uses its own namespace)."""
    base = tmp_path_factory.mktemp("kubeling")
    cache = base / "kube-cache"
    cache.mkdir()
    k = start_kubeling(base / "data", cache)
    try:
        yield k
    finally:
        code = stop_kubeling(k)
        assert code == 0, f"kubeling up exited {code}:\n" + "\n".join(k.output)
