"""
Tests for L{twisted_smtpd._verbs}: how command groups declare their verbs
and MAIL/RCPT parameters, and how L{installCommands} assembles a server
class from them. Driven in memory; no sockets, no real time.
"""

from __future__ import annotations

from typing import Any

from tests._protocolsupport import HELP_LIST, OK, Collector, ProtocolTestCase
from twisted_smtpd import SMTP, syntax
from twisted_smtpd._address import PathRefused
from twisted_smtpd._basiccommands import BasicCommands
from twisted_smtpd._hooks import DONE
from twisted_smtpd._verbs import CommandGroup, Parameter, verb
from twisted_smtpd.testing import Reply


class PingGroup(CommandGroup):
    """
    A command group with one verb, one EHLO keyword and one parameter each
    for MAIL and RCPT.
    """

    mailParameters = (
        Parameter(
            "MT-PRIORITY",
            lambda server, value: None,
            stored=lambda server, key, value: f"{key}={value}",
            room=lambda server: 100,
        ),
    )
    rcptParameters = (
        Parameter(
            "X-NOTIFY",
            lambda server, value: _checkNotify(value),
            offered=lambda server: server.session.host_name != "plain.example",
        ),
    )

    def keywords(self, server: Any) -> list[str]:
        return ["X-PING"]

    @verb("PING")
    @syntax("PING [text]", extended=" [SP <more>]")
    def ping(self, server: Any, arg: str | None) -> None:
        """
        Answer with the argument.
        """
        server.reply(f"250 Pong {arg}")


def _checkNotify(value: str | None) -> None:
    if value is None or value.upper() not in ("NEVER", "SUCCESS"):
        raise PathRefused("501 Bad X-NOTIFY")


class PingSMTP(SMTP):
    """
    L{SMTP} with L{PingGroup} added to its groups.
    """

    commandGroups = (*SMTP.commandGroups, PingGroup())


class NoVrfyCommands(BasicCommands):
    """
    The basic commands without VRFY, as LMTP drops HELO and EHLO.
    """

    vrfy = None  # type: ignore[assignment]


class NoVrfySMTP(SMTP):
    """
    L{SMTP} whose groups no longer have VRFY.
    """

    commandGroups = (*SMTP.commandGroups[:-1], NoVrfyCommands())


class OwnNoopSMTP(SMTP):
    """
    A server class that declares its groups and defines a command that one
    of them has, in its own body.
    """

    commandGroups = SMTP.commandGroups

    def smtp_NOOP(self, arg: str | None) -> None:
        self.push("250 My own NOOP")


class InstallCommandsTests(ProtocolTestCase):
    """
    L{installCommands}, run for each server class that declares
    C{commandGroups}.
    """

    def test_groupVerbInstalled(self) -> None:
        """
        A group's verb becomes an C{smtp_<VERB>} method of the class, which
        the server runs.
        """
        self.assertTrue(callable(PingSMTP.smtp_PING))
        self.assertFalse(hasattr(SMTP, "smtp_PING"))
        tester = self.makeTester(protocol=PingSMTP)
        self.assertEqual(tester.command("PING hello"), Reply(250, "Pong hello"))

    def test_groupVerbHelp(self) -> None:
        """
        The installed method carries the group's HELP syntax, extended after
        EHLO.
        """
        tester = self.makeTester(protocol=PingSMTP)
        self.assertEqual(tester.command("HELP PING"), Reply(214, "Syntax: PING [text]"))
        self.assertEqual(
            tester.command("HELP"), Reply(214, HELP_LIST.replace("NOOP", "NOOP PING"))
        )
        tester.command("EHLO c.example")
        self.assertEqual(
            tester.command("HELP PING"), Reply(214, "Syntax: PING [text] [SP <more>]")
        )

    def test_groupKeyword(self) -> None:
        """
        A group's EHLO keywords come after those of the groups before it.
        """
        tester = self.makeTester(protocol=PingSMTP)
        reply = tester.command("EHLO c.example")
        self.assertEqual(reply.lines[-1], "X-PING")

    def test_droppedVerbUnknown(self) -> None:
        """
        A verb that a base class has and the subclass's groups do not is
        C{None} on the subclass: an unknown command, not in HELP.
        """
        self.assertIsNone(NoVrfySMTP.smtp_VRFY)
        self.assertTrue(callable(SMTP.smtp_VRFY))
        tester = self.makeTester(protocol=NoVrfySMTP)
        self.assertEqual(
            tester.command("VRFY a@example.com"),
            Reply(500, 'Error: command "VRFY" not recognized'),
        )
        self.assertNotIn("VRFY", tester.command("HELP").text)

    def test_ownMethodWins(self) -> None:
        """
        A method the class body defines itself is kept when its groups are
        installed.
        """
        tester = self.makeTester(protocol=OwnNoopSMTP)
        self.assertEqual(tester.command("NOOP"), Reply(250, "My own NOOP"))

    def test_builtInReturnsDone(self) -> None:
        """
        A built-in command that is done returns L{DONE}, an awaitable, for
        overrides that C{await super().smtp_<VERB>(arg)}.
        """
        tester = self.makeTester()
        self.assertIs(tester.server.smtp_NOOP(None), DONE)
        tester.server.flush()
        self.assertEqual(tester.replies(), [OK])

    def test_parameterTables(self) -> None:
        """
        The class's C{mailParameters} and C{rcptParameters} are the
        parameters of its groups, by keyword; a base class's are unchanged.
        """
        builtin = {"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "REQUIRETLS", "AUTH"}
        self.assertEqual(set(SMTP.mailParameters), builtin)
        self.assertEqual(set(SMTP.rcptParameters), {"NOTIFY", "ORCPT"})
        self.assertEqual(set(PingSMTP.mailParameters), builtin | {"MT-PRIORITY"})
        self.assertEqual(set(PingSMTP.rcptParameters), {"NOTIFY", "ORCPT", "X-NOTIFY"})
        self.assertIs(
            PingSMTP.mailParameters["MT-PRIORITY"], PingGroup.mailParameters[0]
        )


class ParameterTests(ProtocolTestCase):
    """
    A group's L{Parameter}s, as MAIL and RCPT use them.
    """

    def test_mailParameterStored(self) -> None:
        """
        A MAIL parameter of a group is checked and stored as its C{stored}
        says.
        """
        tester = self.ready(protocol=PingSMTP)
        self.assertEqual(tester.command("MAIL FROM:<a@example.com> MT-PRIORITY=3"), OK)
        self.assertEqual(tester.server.envelope.mail_options, ["MT-PRIORITY=3"])

    def test_rcptParameter(self) -> None:
        """
        A RCPT parameter of a group is stored upper-cased by default, and
        refused with the reply its check raises.
        """
        tester = self.ready(protocol=PingSMTP)
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(tester.command("RCPT TO:<b@example.com> X-NOTIFY=never"), OK)
        self.assertEqual(
            tester.command("RCPT TO:<c@example.com> X-NOTIFY=DELAY"),
            Reply(501, "Bad X-NOTIFY"),
        )
        self.assertEqual(tester.server.envelope.rcpt_tos, ["b@example.com"])
        self.assertEqual(tester.server.envelope.rcpt_options, ["X-NOTIFY=NEVER"])

    def test_notOffered(self) -> None:
        """
        A parameter whose C{offered} says no is refused as an unknown one.
        """
        tester = self.makeTester(protocol=PingSMTP)
        tester.command("EHLO plain.example")
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(
            tester.command("RCPT TO:<b@example.com> X-NOTIFY=NEVER"),
            Reply(555, "RCPT TO parameters not recognized or not implemented"),
        )

    def test_rcptParameterUnknownToSMTP(self) -> None:
        """
        The plain L{SMTP} class does not understand the parameter that a
        subclass's group adds.
        """
        tester = self.ready()
        tester.command("MAIL FROM:<a@example.com>")
        self.assertEqual(
            tester.command("RCPT TO:<b@example.com> X-NOTIFY=NEVER"),
            Reply(555, "RCPT TO parameters not recognized or not implemented"),
        )

    def test_roomAfterEhlo(self) -> None:
        """
        A parameter's C{room} lengthens the MAIL line limit after EHLO: a
        line past C{command_size_limit} but within the room is read.
        """
        tester = self.ready(Collector(), protocol=PingSMTP)
        line = "MAIL FROM:<a@example.com> MT-PRIORITY=" + "1" * 520
        self.assertGreater(len(line), 512)
        self.assertLessEqual(len(line), 512 + 100)
        self.assertEqual(tester.command(line), OK)

    def test_roomOnlyAfterEhlo(self) -> None:
        """
        After HELO no parameter is allowed, so the MAIL line limit stays
        C{command_size_limit}.
        """
        tester = self.ready(Collector(), greet="HELO", protocol=PingSMTP)
        line = "MAIL FROM:<a@example.com> MT-PRIORITY=" + "1" * 520
        self.assertEqual(tester.command(line), Reply(500, "Command line too long"))
        self.assertIsNone(tester.server.envelope.mail_from)

    def test_roomOnlyForMail(self) -> None:
        """
        The room of a MAIL parameter does not lengthen other commands
        (without DSN, whose ORCPT lengthens RCPT).
        """
        tester = self.ready(Collector(), protocol=PingSMTP, dsn=False)
        tester.command("MAIL FROM:<a@example.com>")
        line = "RCPT TO:<b@example.com> X-NOTIFY=" + "N" * 520
        self.assertEqual(tester.command(line), Reply(500, "Command line too long"))

    def test_roomBounded(self) -> None:
        """
        A MAIL line longer than C{command_size_limit} plus the rooms of the
        parameters is refused.
        """
        tester = self.ready(Collector(), protocol=PingSMTP, dsn=False)
        # SIZE adds 26, SMTPUTF8 nothing here, MT-PRIORITY 100 (ENVID
        # nothing, without DSN).
        line = "MAIL FROM:<a@example.com> MT-PRIORITY=" + "1" * 610
        self.assertGreater(len(line), 512 + 126)
        self.assertEqual(tester.command(line), Reply(500, "Command line too long"))
