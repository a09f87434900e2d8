# -*- test-case-name: tests.test_hooks -*-
"""
The one place where the results of users' hooks are turned into something
the protocol can use.

A hook may return a plain value, a L{Deferred} or a coroutine. Plain values
and results that are already there come back as they are, so that the
common case (a hook that never waits) costs no L{Deferred}; only a result
that is still pending comes back as a L{Deferred}.
"""

from __future__ import annotations

import inspect
from asyncio import ensure_future, isfuture
from collections.abc import Generator
from types import CoroutineType
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


class Done:
    """
    An awaitable that is complete from the start.

    L{SMTP.push} returns one so that C{await server.push(...)} works in a
    coroutine driven by Twisted and in an asyncio task alike, which a
    L{Deferred} does not (an asyncio task refuses to wait on a pending
    L{Deferred}).
    """

    __slots__ = ()

    def __await__(self):
        return iter(())

    def __repr__(self) -> str:
        return "<Done>"


DONE = Done()


def asyncioLoopOf(reactor: Any) -> Any:
    """
    Return the asyncio event loop behind C{reactor}, or C{None} when
    C{reactor} is not Twisted's asyncio reactor.
    """
    return getattr(reactor, "_asyncioEventloop", None)


def settle(result: Any, loop: Any = None) -> Any:
    """
    Turn a hook's result into a value or a pending L{Deferred}.

    Without an asyncio loop a coroutine is stepped here first: one that
    finishes without waiting (the common case for a handler's hooks) costs
    no L{Deferred} at all; one that waits is handed on to
    L{Deferred.fromCoroutine}.

    @param result: What the hook returned.
    @param loop: The asyncio loop to run coroutines on as tasks, or C{None}
        to drive them as Twisted does.
    @return: The value, when it is already known; otherwise a L{Deferred}
        that fires with it.
    @raise BaseException: What the hook's coroutine or L{Deferred} already
        failed with.
    """
    if type(result) is CoroutineType:
        if loop is None:
            try:
                awaited = result.send(None)
            except StopIteration as done:
                return done.value
            result = Deferred.fromCoroutine(_resume(result, awaited))
        else:
            result = Deferred.fromFuture(ensure_future(result, loop=loop))
    elif not isinstance(result, Deferred):
        if inspect.iscoroutine(result):
            # A coroutine-like object of another type (e.g. Cython's).
            return settle(Deferred.fromCoroutine(result), loop)
        if loop is None or not isfuture(result):
            return result
        # An asyncio future, such as the built-in commands give for a
        # pending result when coroutines run as asyncio tasks.
        result = Deferred.fromFuture(result)
    if not result.called or result.paused:
        return result
    # A fired, unpaused Deferred runs a new callback at once.
    box: list[Any] = []
    result.addBoth(box.append)
    value = box[0]
    if isinstance(value, Failure):
        value.raiseException()
    return value


def _resume(coroutine: Any, awaited: Any) -> Generator[Any, Any, Any]:
    """
    Go on driving a coroutine that L{settle} started and that now waits on
    C{awaited}, as a generator that L{Deferred.fromCoroutine} drives.
    """
    while True:
        try:
            value = yield awaited
        except GeneratorExit:
            # This driver is being closed (its Deferred was dropped, say
            # with the connection): close the coroutine, do not resume it.
            coroutine.close()
            raise
        except BaseException as e:
            try:
                awaited = coroutine.throw(e)
            except StopIteration as done:
                return done.value
        else:
            try:
                awaited = coroutine.send(value)
            except StopIteration as done:
                return done.value
