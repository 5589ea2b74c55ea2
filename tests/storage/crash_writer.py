"""A writer for the crash test: streams creates and updates and prints each acknowledgement.

Run as ``python crash_writer.py DB_PATH WORKERS``. Every line on stdout is
``<key> <revision> <value>`` for a write whose call returned, flushed at once, so whatever
the test has read was acknowledged before the process was killed. It never stops by itself.
"""

from __future__ import annotations

import asyncio
import sys

from kubeling.storage.sqlite import SqliteBackend


def ack(key: str, revision: int, value: str) -> None:
    # One write call per line (stdout to a pipe is block-buffered), so a kill never leaves
    # half a line in the pipe.
    sys.stdout.write(f"{key} {revision} {value}\n")
    sys.stdout.flush()


async def worker(store: SqliteBackend, worker_id: int) -> None:
    generation = 0
    while True:
        key = f"/crash/w{worker_id:02}/k{generation:05}"
        value = f"{worker_id}-{generation}-0"
        kv = await store.create(key, value.encode())
        ack(key, kv.mod_revision, value)
        for step in range(1, 4):
            value = f"{worker_id}-{generation}-{step}"
            kv = await store.update(key, value.encode(), expected_revision=kv.mod_revision)
            ack(key, kv.mod_revision, value)
        generation += 1


async def main(path: str, workers: int) -> None:
    store = SqliteBackend(path, compact_every_writes=1_000_000)
    await store.start()
    await asyncio.gather(*(worker(store, n) for n in range(workers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
