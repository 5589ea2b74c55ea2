"""The ``kubeling`` command line around ``up``: help, version, kubeconfig, start-up and stop."""

from __future__ import annotations

import pathlib
import signal
import subprocess

import pytest

from tests.e2e.conftest import Kubeling, kubeling_command, start_kubeling, stop_kubeling

pytestmark = pytest.mark.e2e


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kubeling_command(), *args], capture_output=True, text=True, timeout=60)


def test_up_help_documents_every_option() -> None:
    r = _run("up", "--help")
    assert r.returncode == 0
    for option in ("--data-dir", "--listen", "--dns-listen", "--store", "--runtime", "--verbose"):
        assert option in r.stdout
    assert "~/.local/share/kubeling" in r.stdout


def test_version_names_kubernetes_version() -> None:
    r = _run("version")
    assert r.returncode == 0
    assert "v1.32" in r.stdout


def test_kubeconfig_without_cluster_fails_with_hint(tmp_path: pathlib.Path) -> None:
    r = _run("kubeconfig", "--data-dir", str(tmp_path))
    assert r.returncode == 1
    assert "kubeling up" in r.stderr


def test_etcd_store_is_refused_clearly(tmp_path: pathlib.Path) -> None:
    r = _run("up", "--data-dir", str(tmp_path), "--store", "etcd://127.0.0.1:2379")
    assert r.returncode == 2
    assert "not available yet" in r.stderr


def test_up_prints_one_ready_line_and_kubeconfig_command_prints_it(
    kubeling_up: Kubeling,
) -> None:
    assert [line for line in kubeling_up.output if line.startswith("kubeling")] == [
        f"kubeling is ready at {kubeling_up.url} (kubeconfig: {kubeling_up.kubeconfig})"
    ]
    assert kubeling_up.url.startswith("https://127.0.0.1:")
    assert not kubeling_up.url.endswith(":0")
    r = _run("kubeconfig", "--data-dir", str(kubeling_up.data_dir))
    assert r.returncode == 0
    assert r.stdout == kubeling_up.kubeconfig.read_text()
    assert f"server: {kubeling_up.url}" in r.stdout
    assert oct(kubeling_up.kubeconfig.stat().st_mode & 0o777) == "0o600"
    assert kubeling_up.ok("get", "--raw", "/readyz") == "ok"


def test_second_up_on_same_data_dir_is_refused(kubeling_up: Kubeling) -> None:
    before = kubeling_up.kubeconfig.read_text()
    r = _run("up", "--data-dir", str(kubeling_up.data_dir), "--listen", "127.0.0.1:0")
    assert r.returncode == 1
    assert "in use by another process" in r.stderr
    assert kubeling_up.kubeconfig.read_text() == before
    assert kubeling_up.ok("get", "--raw", "/livez") == "ok"


def test_up_stops_cleanly_on_sigint(kubeling_dirs: tuple[pathlib.Path, pathlib.Path]) -> None:
    data, cache = kubeling_dirs
    k = start_kubeling(data, cache, "--store=memory")
    k.ok("get", "ns")
    k.proc.send_signal(signal.SIGINT)
    assert k.proc.wait(30) == 0


def test_image_import_then_list_shows_the_archive_name(tmp_path: pathlib.Path) -> None:
    from tests.agent.test_images import layer, oci_archive

    archive = oci_archive(
        tmp_path / "img.tar", "example.com/tools:1", [layer([("bin", None)])], {"Env": ["A=1"]}
    )
    data_dir = tmp_path / "data"
    imported = _run("image", "import", str(archive), "--data-dir", str(data_dir))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "imported example.com/tools:1"
    listed = _run("image", "list", "--data-dir", str(data_dir))
    assert listed.stdout.split() == ["example.com/tools:1"]


def test_image_import_of_a_non_archive_fails_with_the_reason(tmp_path: pathlib.Path) -> None:
    bogus = tmp_path / "not-an-image.tar"
    bogus.write_text("hello")
    r = _run("image", "import", str(bogus), "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 1
    assert r.stderr.startswith(f"kubeling: cannot import {bogus}: ")


def test_no_default_storage_class_flag_leaves_the_cluster_without_one(
    tmp_path: pathlib.Path,
) -> None:
    k = start_kubeling(
        tmp_path / "data", tmp_path / "cache", "--runtime=simulated", "--no-default-storage-class"
    )
    try:
        assert k.ok("get", "storageclass", "-o", "name").strip() == ""
    finally:
        assert stop_kubeling(k) == 0
