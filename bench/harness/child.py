"""Process launcher: run one function in a fresh process forked from a server that has the heavy libraries loaded.

`import torch` alone takes 1.5 s here, so each measurement forks from a multiprocessing forkserver whose server
preloaded torch, torchvision, onnx, onnxruntime, numpy and export's loaders: a clean process (no parent state, no
CUDA context, no threads) that starts in milliseconds. Its baseline RSS is those libraries. A child that raises,
crashes or hangs becomes an error string, never a dead run.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

PRELOAD = ("numpy", "torch", "torchvision", "onnx", "onnxruntime", "export.loaders", "export.onnx_io",
           "prune.models")


@dataclass(frozen=True)
class ChildResult:
    """What a child sent back: its return value, or why there is none."""

    value: Any
    error: str | None  # "<ExceptionType>: message", a signal, or a timeout; None on success

    @property
    def ok(self) -> bool:
        return self.error is None


@functools.cache
def server_context() -> multiprocessing.context.ForkServerContext:
    """The forkserver context; its server (started on first use) imports PRELOAD once."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _child_main(conn: Connection, fn: Callable[..., Any], args: tuple) -> None:
    try:
        message = ChildResult(fn(*args), None)
    except BaseException as exc:  # everything goes back to the parent, which records it
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last else ""
        message = ChildResult(None, f"{type(exc).__name__}: {exc}{where}")
    conn.send(message)
    conn.close()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"child process killed by {signal.Signals(-exitcode).name}"
    return f"child process exited with status {exitcode} without a result"


def run_in_child(fn: Callable[..., Any], *args: Any, timeout: float) -> ChildResult:
    """fn(*args) in a new process forked from the server; fn and args must pickle (module-level fn)."""
    context = server_context()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(send, fn, args), daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            process.kill()
            process.join()
            return ChildResult(None, f"timed out after {timeout:g} s")
        return receive.recv()
    except EOFError:
        process.join()
        return ChildResult(None, _death(process.exitcode))
    finally:
        receive.close()
        process.join()
