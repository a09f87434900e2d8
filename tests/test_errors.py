"""
Tests for L{twisted_smtpd._errors}: what the client is told, and what is
logged, when a command or a hook raises. No sockets, no real time.
"""

from __future__ import annotations

from twisted.logger import capturedLogs

from tests._protocolsupport import (
    LOCAL_ERROR,
    NEED_MAIL,
    OK,
    SECRET,
    Boom,
    ProtocolTestCase,
)
from twisted_smtpd import (
    SMTP,
)


class ExceptionLoggingTests(ProtocolTestCase):
    """
    How exceptions are reported.
    """

    def test_loggedWithTwistedLogger(self) -> None:
        """
        An exception in a hook is logged as a failure event in the server's
        namespace.
        """

        class Handler:
            def handle_NOOP(self, server, session, envelope, arg):
                raise Boom(SECRET)

        tester = self.makeTester(Handler())
        with capturedLogs() as events:
            self.assertEqual(tester.command("NOOP"), LOCAL_ERROR)
        failures = [e for e in events if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertIsInstance(failures[0]["log_failure"].value, Boom)
        self.assertEqual(failures[0]["log_namespace"], "twisted_smtpd.server")
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)

    def test_exceptionInSubclassCommand(self) -> None:
        """
        An exception in a subclass's C{smtp_<VERB>} gives 451 too.
        """

        class Broken(SMTP):
            def smtp_XBROKEN(self, arg):
                raise Boom(SECRET)

        tester = self.makeTester(protocol=Broken)
        self.assertEqual(tester.command("XBROKEN"), LOCAL_ERROR)
        self.assertNotIn(SECRET.encode(), tester.transport.value())
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertOpen(tester)

    def test_exceptionPipelined(self) -> None:
        """
        After an exception, pipelined commands are still answered in order.
        """

        class Handler:
            def handle_MAIL(self, server, session, envelope, address, options):
                raise Boom(SECRET)

        tester = self.ready(Handler())
        tester.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nNOOP\r\n")
        self.assertEqual(tester.replies(), [LOCAL_ERROR, NEED_MAIL, OK])
        self.flushLoggedErrors(Boom)
