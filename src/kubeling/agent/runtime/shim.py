"""The per-container shim: runs ``runc run`` in the foreground, writes logs and the exit code.

Started detached (own session) by the runc runtime, so containers and their log capture
outlive an agent restart, like containerd's shim. stdout and stderr are written to the log
file in the CRI format the kubelet serves logs from: ``<RFC3339Nano> <stream> <P|F> <text>``
(``P`` = a partial line cut at 16 KiB). When runc returns — its status is the container's
exit code, 128+signal for a signal — ``exit.json`` is written by rename, which is what the
runtime waits for.

``runc run --keep`` leaves the stopped container, and with it its cgroup, in place: the
shim reads the memory cgroup's ``oom_kill`` counter (v1 ``memory.oom_control``, v2
``memory.events``) into ``exit.json`` and only then deletes the container. Without
``--keep`` runc destroys the cgroup as it returns, and with it the only record of an OOM
kill (v1 counters are not hierarchical, so no parent keeps it either).

Run as ``python -I shim.py --runc R --root D --bundle B --id ID --log L``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

MAX_LINE = 16 * 1024


def timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


def copy_stream(src: IO[bytes], stream: str, out: IO[bytes], lock: threading.Lock) -> None:
    while True:
        line = src.readline(MAX_LINE)
        if not line:
            return
        tag = "F"
        if line.endswith(b"\n"):
            line = line[:-1]
        elif len(line) >= MAX_LINE:
            tag = "P"
        with lock:
            out.write(f"{timestamp()} {stream} {tag} ".encode() + line + b"\n")
            out.flush()


def oom_kills(runc_root: str, container_id: str) -> int | None:
    """How many processes the container's memory cgroup OOM-killed; None when unknown."""
    try:
        with open(os.path.join(runc_root, container_id, "state.json"), encoding="utf-8") as f:
            paths = json.load(f).get("cgroup_paths") or {}
    except (OSError, ValueError):
        return None
    candidates = []
    if paths.get("memory"):
        candidates.append(os.path.join(paths["memory"], "memory.oom_control"))
    if paths.get(""):
        candidates.append(os.path.join(paths[""], "memory.events"))
    for path in candidates:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubeling-shim")
    for opt in ("--runc", "--root", "--bundle", "--id", "--log"):
        parser.add_argument(opt, required=True)
    args = parser.parse_args(argv)
    state = Path(args.bundle) / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "shim.pid").write_text(str(os.getpid()))
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "ab") as log:
        proc = subprocess.Popen(
            [
                args.runc,
                "--root",
                args.root,
                "run",
                "--keep",
                "--bundle",
                args.bundle,
                "--pid-file",
                str(state / "pid"),
                args.id,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        lock = threading.Lock()
        assert proc.stdout is not None and proc.stderr is not None
        threads = [
            threading.Thread(target=copy_stream, args=(proc.stdout, "stdout", log, lock)),
            threading.Thread(target=copy_stream, args=(proc.stderr, "stderr", log, lock)),
        ]
        for t in threads:
            t.start()
        code = proc.wait()
        for t in threads:
            t.join()
    finished = timestamp()[:19] + "Z"
    kills = oom_kills(args.root, args.id)
    subprocess.run(
        [args.runc, "--root", args.root, "delete", "--force", args.id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    record = {"exitCode": code, "finishedAt": finished, "oomKilled": bool(kills)}
    tmp = state / "exit.json.tmp"
    tmp.write_text(json.dumps(record))
    os.rename(tmp, state / "exit.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
