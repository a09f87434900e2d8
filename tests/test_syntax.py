"""
Tests for L{twisted_smtpd._syntax}: the C{@syntax} decorator, and the HELP
text it gives a subclass's commands. Driven in memory; no sockets, no real
time.
"""

from __future__ import annotations

from tests._protocolsupport import HELP_LIST, ProtocolTestCase
from twisted_smtpd import SMTP, syntax
from twisted_smtpd.testing import Reply


class SyntaxTests(ProtocolTestCase):
    """
    L{syntax}.
    """

    def test_attributes(self) -> None:
        """
        The decorator returns the method itself, with its text, extended
        text and condition.
        """

        def smtp_X(self, arg):
            pass

        decorated = syntax("X <y>", extended=" [z]", when="tls_context")(smtp_X)
        self.assertIs(decorated, smtp_X)
        self.assertEqual(
            (
                smtp_X.__smtp_syntax__,
                smtp_X.__smtp_syntax_extended__,
                smtp_X.__smtp_syntax_when__,
            ),
            ("X <y>", " [z]", "tls_context"),
        )

    def test_defaults(self) -> None:
        """
        Without C{extended} and C{when}, both are C{None}.
        """

        @syntax("X")
        def smtp_X(self, arg):
            pass

        self.assertEqual(
            (smtp_X.__smtp_syntax_extended__, smtp_X.__smtp_syntax_when__),
            (None, None),
        )

    def test_extendedAfterEhlo(self) -> None:
        """
        The extended text is added to HELP's syntax after EHLO, not after
        HELO.
        """

        class Server(SMTP):
            @syntax("XTRA <arg>", extended=" [SP <more>]")
            def smtp_XTRA(self, arg):
                self.push("250 ok")

        tester = self.ready(protocol=Server, greet="HELO")
        self.assertEqual(tester.command("HELP XTRA"), Reply(214, "Syntax: XTRA <arg>"))
        tester.command("EHLO c.example")
        self.assertEqual(
            tester.command("HELP XTRA"), Reply(214, "Syntax: XTRA <arg> [SP <more>]")
        )

    def test_when(self) -> None:
        """
        A command whose C{when} attribute of the server is false is not
        listed by HELP.
        """

        class Server(SMTP):
            flagOn = False

            @syntax("XTRA", when="flagOn")
            def smtp_XTRA(self, arg):
                self.push("250 ok")

        tester = self.makeTester(protocol=Server)
        self.assertEqual(tester.command("HELP"), Reply(214, HELP_LIST))
        tester.server.flagOn = True
        self.assertEqual(
            tester.command("HELP"), Reply(214, HELP_LIST.replace("VRFY", "VRFY XTRA"))
        )
