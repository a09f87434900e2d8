"""
Tests for L{twisted_smtpd._filelimit} (with a stand-in for the C{resource}
module: the limits of the test process are not touched), for the way
C{twistd smtpd} raises and logs the limit as it starts, and for the
factory's high-water mark worked out from it.
"""

from __future__ import annotations

import sys

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import SMTPFactory, _factory
from twisted_smtpd._daemon import CommandLineService, logFileLimit
from twisted_smtpd._endpoints import Listener
from twisted_smtpd._filelimit import (
    OPEN_MAX,
    highWaterMark,
    raiseFileLimit,
    softFileLimit,
)
from twisted_smtpd.handlers import Sink


class FakeResource:
    """
    The parts of the C{resource} module that the limit needs, for one
    process whose limits are C{soft} and C{hard}.

    @ivar set: The limits given to C{setrlimit}.
    """

    RLIMIT_NOFILE = 7
    RLIM_INFINITY = -1

    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.limits = (soft, hard)
        self.refuse = refuse
        self.set: list[tuple[int, int]] = []

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == self.RLIMIT_NOFILE
        return self.limits

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        assert which == self.RLIMIT_NOFILE
        self.set.append(limits)
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = limits


class RaiseFileLimitTests(SynchronousTestCase):
    """
    L{raiseFileLimit} raises the soft limit to the hard one.
    """

    def test_raised(self) -> None:
        """
        A soft limit below the hard one is raised to it.
        """
        resource = FakeResource(1024, 524288)
        self.assertEqual(raiseFileLimit(resource), (1024, 524288))
        self.assertEqual(resource.set, [(524288, 524288)])

    def test_alreadyThere(self) -> None:
        """
        A soft limit at the hard one is left alone.
        """
        resource = FakeResource(4096, 4096)
        self.assertEqual(raiseFileLimit(resource), (4096, 4096))
        self.assertEqual(resource.set, [])

    def test_refused(self) -> None:
        """
        When the system refuses the new limit, the old one stays, and is
        what is returned.
        """
        resource = FakeResource(1024, 4096, refuse=True)
        self.assertEqual(raiseFileLimit(resource), (1024, 1024))

    def test_unlimitedHardOnMacOS(self) -> None:
        """
        On macOS an unlimited hard limit is taken as C{OPEN_MAX}, the most
        the system gives.
        """
        self.patch(sys, "platform", "darwin")
        resource = FakeResource(256, FakeResource.RLIM_INFINITY)
        self.assertEqual(raiseFileLimit(resource), (256, OPEN_MAX))
        self.assertEqual(resource.set, [(OPEN_MAX, FakeResource.RLIM_INFINITY)])

    def test_unlimitedHardElsewhere(self) -> None:
        """
        Elsewhere an unlimited hard limit is tried as it is.
        """
        self.patch(sys, "platform", "linux")
        resource = FakeResource(1024, FakeResource.RLIM_INFINITY)
        self.assertEqual(raiseFileLimit(resource), (1024, None))
        self.assertEqual(resource.set, [(-1, -1)])

    def test_unlimitedSoft(self) -> None:
        """
        An unlimited soft limit needs nothing, and is C{None}.
        """
        resource = FakeResource(FakeResource.RLIM_INFINITY, FakeResource.RLIM_INFINITY)
        self.assertEqual(raiseFileLimit(resource), (None, None))
        self.assertEqual(resource.set, [])

    def test_noResourceModule(self) -> None:
        """
        Where there is no C{resource} module (Windows) nothing is done.
        """
        import resource

        sys.modules["resource"] = None  # type: ignore[assignment]
        self.addCleanup(sys.modules.__setitem__, "resource", resource)
        self.assertEqual(raiseFileLimit(), (None, None))
        self.assertIsNone(softFileLimit())

    def test_realModule(self) -> None:
        """
        Without a stand-in, the soft limit is the process's.
        """
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        expected = None if soft == resource.RLIM_INFINITY else soft
        self.assertEqual(softFileLimit(), expected)


class HighWaterMarkTests(SynchronousTestCase):
    """
    L{highWaterMark} keeps an eighth of the limit free, at least 64
    descriptors and at most half.
    """

    def test_marks(self) -> None:
        """
        The mark for common limits.
        """
        self.assertEqual(
            [highWaterMark(n) for n in (1024, 4096, 524288, 256, 100, 2, 1)],
            [896, 3584, 458752, 192, 50, 1, 1],
        )

    def test_noLimit(self) -> None:
        """
        No limit, no mark.
        """
        self.assertIsNone(highWaterMark(None))


class FactoryMarkTests(SynchronousTestCase):
    """
    L{SMTPFactory} works out its high-water mark from the limit when it
    starts, unless one was given.
    """

    def test_workedOutAtStart(self) -> None:
        """
        With no C{high_water_mark}, there is none until the factory starts,
        then it is the limit's, read then (not when the factory was made).
        """
        limit = [1024]
        self.patch(_factory, "softFileLimit", lambda: limit[0])
        factory = SMTPFactory(Sink(), reactor=Clock())
        self.assertIsNone(factory.highWaterMark)
        limit[0] = 4096
        factory.doStart()
        self.assertEqual(factory.highWaterMark, 3584)
        factory.doStop()

    def test_given(self) -> None:
        """
        A C{high_water_mark} given is kept; 0 means none, even once started.
        """
        self.patch(_factory, "softFileLimit", lambda: 1024)
        factory = SMTPFactory(Sink(), reactor=Clock(), high_water_mark=10)
        factory.doStart()
        self.assertEqual(factory.highWaterMark, 10)
        off = SMTPFactory(Sink(), reactor=Clock(), high_water_mark=0)
        off.doStart()
        self.assertIsNone(off.highWaterMark)

    def test_bad(self) -> None:
        """
        C{high_water_mark} must be C{None} or an C{int} of at least 0.
        """
        e = self.assertRaises(ValueError, SMTPFactory, Sink(), high_water_mark=-1)
        self.assertEqual(str(e), "high_water_mark must be at least 0, not -1")
        for value in (1.5, "10", True):
            self.assertRaises(TypeError, SMTPFactory, Sink(), high_water_mark=value)


class StartingReactor(MemoryReactorClock):
    """
    An in-memory reactor whose ports start their factory, as real ones do.
    """

    def listenTCP(self, port, factory, backlog=50, interface=""):
        factory.doStart()
        return super().listenTCP(port, factory, backlog, interface)


class DaemonLimitTests(SynchronousTestCase):
    """
    The service of C{twistd smtpd} raises the limit before it listens, and
    logs it once it listens.
    """

    def test_logFileLimit(self) -> None:
        """
        The limit is logged with what it was raised from, if it was.
        """
        with capturedLogs() as events:
            logFileLimit(1024, 524288)
            logFileLimit(4096, 4096)
            logFileLimit(None, None)
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "smtpd: open file descriptor limit raised from 1024 to 524288",
                "smtpd: open file descriptor limit 4096",
                "smtpd: no limit on open file descriptors",
            ],
        )
        self.assertEqual({e["log_namespace"] for e in events}, {"twisted_smtpd.tap"})

    def test_raisedBeforeListening(self) -> None:
        """
        Starting the service (as twistd does, privileged first) raises the
        limit once, before the factory starts, which reads the raised
        limit; the limit is logged once.
        """
        resource = FakeResource(1024, 8192)
        self.patch(_factory, "softFileLimit", lambda: resource.limits[0])
        reactor = StartingReactor()
        factory = SMTPFactory(Sink(), reactor=reactor)

        class Service(CommandLineService):
            raiseFileLimit = staticmethod(lambda: raiseFileLimit(resource))

        service = Service(
            factory, [Listener.make(reactor, "tcp:2525")], reactor=reactor
        )
        with capturedLogs() as events:
            service.privilegedStartService()
            service.startService()
        self.assertEqual(resource.set, [(8192, 8192)])
        self.assertEqual(factory.highWaterMark, 7168)
        self.assertEqual(
            [formatEvent(e) for e in events if "descriptor" in formatEvent(e)],
            ["smtpd: open file descriptor limit raised from 1024 to 8192"],
        )
        service.stopService()
