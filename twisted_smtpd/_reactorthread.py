# -*- test-case-name: tests.test_controller -*-
"""
The global reactor run in a daemon thread, for code in other threads that
waits on it: L{runningReactor} starts the thread once per process,
L{callInReactor} runs a function there and waits for its result, and the
thread is stopped as the interpreter exits.

This is the machinery of L{twisted_smtpd.controller}; it knows nothing of
SMTP.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python import threadable
from twisted.python.failure import Failure

__all__ = ["ReactorThread", "callInReactor", "refuseInReactorThread", "runningReactor"]

#: Seconds the process waits at exit for the reactor thread to shut down.
_EXIT_WAIT = 5.0

_REACTOR_THREAD_NAME = "twisted_smtpd reactor"


class ReactorThread:
    """
    The daemon thread that runs the global reactor for every controller of
    the process, started once, on first use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def reactor(self, timeout: float) -> Any:
        """
        Return the global reactor, running it in a thread if nothing runs
        it yet.

        @param timeout: Seconds to wait for the reactor to run.
        @raise RuntimeError: If the reactor runs in the calling thread, or
            ran and stopped.
        @raise TimeoutError: If it is not running within C{timeout}.
        """
        from twisted.internet import reactor

        with self._lock:
            if self._thread is None:
                if reactor.running:
                    refuseInReactorThread()
                    return reactor
                if getattr(reactor, "_startedBefore", False):
                    raise RuntimeError(
                        "the global reactor has stopped and cannot be restarted"
                    )
                reactor.callWhenRunning(self._ready.set)
                self._thread = threading.Thread(
                    target=reactor.run,
                    kwargs={"installSignalHandlers": False},
                    name=_REACTOR_THREAD_NAME,
                    daemon=True,
                )
                self._thread.start()
                _registerAtExit(self._stopAtExit)
            else:
                refuseInReactorThread()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the reactor did not start within {timeout} s")
        if not reactor.running:
            raise RuntimeError("the global reactor has stopped")
        return reactor

    def _stopAtExit(self) -> None:
        """
        Stop the reactor as the interpreter exits, as a program that ran it
        itself would: listening sockets close (a Unix socket's file is
        removed) and work in its thread pool finishes, even if no
        controller was stopped.
        """
        from twisted.internet import reactor

        if reactor.running:
            reactor.callFromThread(reactor.stop)
        if self._thread is not None:
            self._thread.join(_EXIT_WAIT)


def _registerAtExit(function: Callable[[], None]) -> None:
    # After the program's own threads have ended: they may still be using
    # the server.
    atexit.register(function)


def refuseInReactorThread() -> None:
    """
    Refuse to wait on the reactor from its own thread, where waiting would
    never end.

    @raise RuntimeError: If called in the thread that runs the reactor.
    """
    if threadable.isInIOThread():
        raise RuntimeError(
            "a Controller cannot be started or stopped from the thread that"
            " runs the reactor (it would wait for itself); in a Twisted program"
            " listen with twisted_smtpd.service.makeService or an endpoint and"
            " twisted_smtpd.SMTPFactory"
        )


_reactorThread = ReactorThread()


def runningReactor(timeout: float) -> Any:
    """
    Return the global reactor once it runs, in the one thread this process
    runs it in (see L{ReactorThread.reactor}).

    @param timeout: Seconds to wait for the reactor to run.
    @raise RuntimeError: If called in the reactor's thread, or if the
        reactor ran and stopped.
    @raise TimeoutError: If it is not running within C{timeout}.
    """
    return _reactorThread.reactor(timeout)


def callInReactor(
    reactor: Any,
    function: Callable[[], Any],
    timeout: float,
    what: str,
    undo: Callable[[Any], Any] | None = None,
) -> Any:
    """
    Run C{function} in the reactor thread and wait, at most C{timeout}
    seconds, for its result (the result of its L{Deferred}, if it returns
    one), as L{blockingCallFromThread
    <twisted.internet.threads.blockingCallFromThread>} does without a
    limit.

    @param reactor: The running reactor.
    @param function: What to run, without arguments.
    @param timeout: Seconds to wait for the result.
    @param what: What C{function} does, for the L{TimeoutError}'s message.
    @param undo: Called in the reactor with the result if it comes after
        the caller gave up waiting, e.g. to stop listening on a port
        nobody will use.
    @return: The result of C{function}.
    @raise TimeoutError: If no result came in time.
    @raise Exception: What C{function} raised, or its L{Deferred} failed
        with.
    """
    results: queue.Queue[Any] = queue.Queue()
    pending: list[Deferred[Any]] = []

    def call() -> None:
        d = maybeDeferred(function)
        pending.append(d)
        d.addBoth(results.put)

    reactor.callFromThread(call)
    try:
        result = results.get(timeout=timeout)
    except queue.Empty:
        if undo is not None:
            # Runs after call(): reactor.callFromThread keeps the order.
            reactor.callFromThread(lambda: pending[0].addCallback(undo))
        raise TimeoutError(f"{what} took more than {timeout} s") from None
    if isinstance(result, Failure):
        result.raiseException()
    return result
