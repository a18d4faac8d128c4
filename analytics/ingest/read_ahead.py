"""Reading a large import file ahead, in a forked child process, while this process writes what was already read.

An import is two kinds of work that need not wait for each other: reading and validating the rows of a file (pure
Python: CSV records, typed values, error messages) and writing the valid ones (the database, in this process, in
one transaction). Done in turns, one core idles while the other works; in two processes the reading of the next
chunk overlaps the writing of this one, on a machine with a second core (or the database server's own).

`read_ahead(produce, ...)` runs the generator `produce` in a child forked from this process, so the child starts
with everything the parent had (the validation state, the site's time zone) and needs no set-up. The child
sends each item through a pipe, encoded by `encode` into plain tuples that pickle quickly, and the parent yields
`decode(...)` of each, in order. The pipe holds about one item: the child blocks until the parent takes it, so
memory stays flat whatever the file's size.

The child never touches the database, logs, or anything else the parent holds open, and leaves through
os._exit (no atexit handlers, no flushing of buffers it inherited, no closing of the parent's database
connection). An exception in the child is re-raised in the parent; if the parent stops early (an error while
writing, a KeyboardInterrupt) the child is killed and reaped. A child that dies without finishing is an error in
the parent, never a silently short file.

Why fork and not multiprocessing: a Celery prefork worker's processes are daemonic, and multiprocessing refuses
to start children from a daemonic process. `available()` is False where os.fork is missing (Windows); the caller
then reads in-process, as it does for small files.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

Item = TypeVar("Item")

# Below this a file is read in-process: forking and the pipe cost more than they save on a few thousand rows. A
# 1 MB file is about 12,000 events, 0.1 s of reading; the 6 MB members file of bench_import.py --scale 1 gains about
# a second (docs/PERFORMANCE.md, "Session 20").
MIN_BYTES = 1 << 20


def available() -> bool:
    return hasattr(os, "fork")


class Tally:
    """Stands in for the progress bar in the child: counts the bytes read, which travel to the parent's bar with
    the next item (the child never writes to the terminal)."""

    def __init__(self) -> None:
        self.count = 0

    def update(self, count: int) -> None:
        self.count += count

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


class ReadAheadFailed(RuntimeError):
    """The child failed with an exception that could not be sent as it was; the message holds its traceback."""


def read_ahead(
    produce: Callable[[Tally], Iterator[Item]],
    *,
    encode: Callable[[Item], Any],
    decode: Callable[[Any], Item],
    bar: Any | None = None,
) -> Iterator[Item]:
    """Yield decode(encode(item)) for each item produce(tally) yields, produce running in a forked child. The bytes
    the child counts on the tally go to bar.update in the parent. If the fork fails, produce runs here (with the bar
    itself as its tally) and its items are yielded as they are."""
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process to be had (EAGAIN, ENOMEM): read here, as for a small file
        os.close(read_fd)
        os.close(write_fd)
        yield from produce(bar if bar is not None else Tally())
        return
    if pid == 0:  # the child
        try:
            os.close(read_fd)
            # Ctrl-C reaches the whole process group: the parent handles it (and kills this child).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _send_all(Connection(write_fd, readable=False), produce, encode)
        finally:
            os._exit(0)
    os.close(write_fd)
    reader = Connection(read_fd, writable=False)
    finished = False
    try:
        while True:
            try:
                message = reader.recv_bytes()
            except EOFError:
                raise ReadAheadFailed("the process reading the file ahead ended before the end of the file") from None
            tag, count, payload = pickle.loads(message)
            if bar is not None and count:
                bar.update(count)
            if tag == "item":
                yield decode(payload)
            elif tag == "done":
                finished = True
                return
            else:
                raise payload
    finally:
        reader.close()
        if not finished:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _send_all(writer: Connection, produce: Callable[[Tally], Iterator[Any]], encode: Callable[[Any], Any]) -> None:
    tally = Tally()
    try:
        for item in produce(tally):
            writer.send_bytes(pickle.dumps(("item", tally.take(), encode(item)), protocol=pickle.HIGHEST_PROTOCOL))
        writer.send_bytes(pickle.dumps(("done", tally.take(), None)))
    except BrokenPipeError:  # the parent stopped reading: it is gone or about to kill this process
        return
    except BaseException as error:  # noqa: BLE001 - every failure goes to the parent, which re-raises it
        try:
            message = pickle.dumps(("error", 0, error))
            pickle.loads(message)  # an exception whose constructor pickle cannot call again is sent as text
        except Exception:  # noqa: BLE001
            message = pickle.dumps(("error", 0, ReadAheadFailed("".join(traceback.format_exception(error)))))
        with contextlib.suppress(OSError):
            writer.send_bytes(message)
