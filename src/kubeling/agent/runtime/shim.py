"""The per-container shim: runs ``runc run`` in the foreground, writes logs and the exit code.

Started detached (own session) by the runc runtime, so containers and their log capture
outlive an agent restart, like containerd's shim. stdout and stderr are written to the log
file in the CRI format the kubelet serves logs from: ``<RFC3339Nano> <stream> <P|F> <text>``
(``P`` = a partial line cut at 16 KiB). When runc returns — its status is the container's
exit code, 128+signal for a signal — ``exit.json`` is written by rename, which is what the
runtime waits for.

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
    tmp = state / "exit.json.tmp"
    tmp.write_text(json.dumps({"exitCode": code, "finishedAt": timestamp()[:19] + "Z"}))
    os.rename(tmp, state / "exit.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
