"""
Tests for L{twisted_smtpd._session}: L{Session} and L{Envelope} as plain
objects, with aiosmtpd's attributes and defaults.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd import Envelope, Session


class SessionTests(SynchronousTestCase):
    """
    L{Session}.
    """

    def test_defaults(self) -> None:
        """
        A new session knows nothing of its client yet.
        """
        session = Session()
        self.assertEqual(
            (
                session.peer,
                session.ssl,
                session.host_name,
                session.extended_smtp,
                session.loop,
                session.proxy_data,
                session.authenticated,
                session.auth_data,
                session.transport,
            ),
            (None, None, None, False, None, None, None, None, None),
        )

    def test_loop(self) -> None:
        """
        The loop given is kept as C{loop}.
        """
        loop = object()
        self.assertIs(Session(loop).loop, loop)

    def test_loginDataDeprecated(self) -> None:
        """
        Reading C{login_data} warns that it is deprecated in favour of
        C{auth_data}, and gives C{None} on a new session.
        """
        session = Session()
        self.assertIsNone(session.login_data)
        [warning] = self.flushWarnings([self.test_loginDataDeprecated])
        self.assertIs(warning["category"], DeprecationWarning)
        self.assertEqual(
            warning["message"],
            "Session.login_data is deprecated; use Session.auth_data",
        )

    def test_loginDataSetDeprecated(self) -> None:
        """
        Setting C{login_data} warns too, and the value is kept for a
        handler that reads it back; C{auth_data} is not changed.
        """
        session = Session()
        session.login_data = "user"
        self.assertEqual(session.login_data, "user")
        self.assertIsNone(session.auth_data)
        warnings = self.flushWarnings([self.test_loginDataSetDeprecated])
        self.assertEqual([w["category"] for w in warnings], [DeprecationWarning] * 2)

    def test_ownAttributes(self) -> None:
        """
        A handler may keep attributes of its own on the session.
        """
        session = Session()
        session.greylisted = True
        self.assertTrue(session.greylisted)


class EnvelopeTests(SynchronousTestCase):
    """
    L{Envelope}.
    """

    def test_defaults(self) -> None:
        """
        A new envelope has no sender, recipients, options or content.
        """
        envelope = Envelope()
        self.assertEqual(
            (
                envelope.mail_from,
                envelope.mail_options,
                envelope.smtp_utf8,
                envelope.content,
                envelope.original_content,
                envelope.rcpt_tos,
                envelope.rcpt_options,
            ),
            (None, [], False, None, None, [], []),
        )

    def test_listsNotShared(self) -> None:
        """
        Each envelope has lists of its own.
        """
        first, second = Envelope(), Envelope()
        first.rcpt_tos.append("a@example.com")
        first.mail_options.append("SIZE=1")
        first.rcpt_options.append("NOTIFY=NEVER")
        self.assertEqual(
            (second.rcpt_tos, second.mail_options, second.rcpt_options), ([], [], [])
        )
