"""
Tests for L{twisted_smtpd._config} and L{twisted_smtpd._validate}: the
options of the server validated once, and the frozen L{Config} made from
them. No sockets, no real time.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from operator import setitem
from types import SimpleNamespace
from typing import Any

from attrs import exceptions, fields
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import Portal
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests._protocolsupport import HOST, Collector, PingSMTP, connect
from twisted_smtpd import SMTP, SMTPFactory, _config
from twisted_smtpd._config import (
    BARE_NEWLINE_POLICIES,
    DATA_SIZE_DEFAULT,
    HOOK_NAMES,
    OPTION_NAMES,
    Config,
    SMTPOptions,
    callLimits,
    defaultHostname,
    findHooks,
    findMechanisms,
    makeConfig,
)
from twisted_smtpd._idle import IdleTimer
from twisted_smtpd._validate import boolean, checkInt, integer, needs, onlyOne
from twisted_smtpd.testing import Reply, SMTPTester


class Handler:
    """
    A handler with a hook of each form the server looks for.
    """

    def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"

    def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: Any
    ) -> Any:
        return responses

    def auth_PLAIN(self, server: Any, args: Any) -> Any:
        return None

    def auth_X_OWN__MECH(self, server: Any, args: Any) -> Any:
        return None


class OldEHLOHandler:
    """
    A handler whose C{handle_EHLO} has the old form, without C{responses}.
    """

    def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str
    ) -> str:
        return "250 mx.example"


class FakeTLSOptions:
    """
    Something that passes for Twisted TLS options: it has C{getContext}.
    """

    def getContext(self) -> None:
        return None


def config(**options: Any) -> Config:
    """
    Make a configuration for L{Handler} on a L{Clock}, with a host name so
    that no DNS lookup happens.
    """
    options.setdefault("hostname", "mx.example")
    return makeConfig(Handler(), reactor=Clock(), **options)


#: Options and the L{TypeError} each gets, word for word.
TYPE_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"data_size_limit": "x"}, "data_size_limit must be an int, not 'x'"),
    ({"data_size_limit": 1.5}, "data_size_limit must be an int, not 1.5"),
    ({"data_size_limit": True}, "data_size_limit must be an int, not True"),
    ({"enable_SMTPUTF8": 1}, "enable_SMTPUTF8 must be True or False, not 1"),
    ({"decode_data": "yes"}, "decode_data must be True or False, not 'yes'"),
    ({"hostname": b"mx"}, "hostname must be a str, not b'mx'"),
    ({"ident": 5}, "ident must be a str, not 5"),
    ({"timeout": "10"}, "timeout must be a number of seconds, not '10'"),
    ({"timeout": True}, "timeout must be a number of seconds, not True"),
    (
        {"command_call_limit": True},
        "command_call_limit must be an int or a dict of ints",
    ),
    (
        {"command_call_limit": "5"},
        "command_call_limit must be an int or a dict of ints, not '5'",
    ),
    ({"command_call_limit": {1: 2}}, "command_call_limit keys must be str, not 1"),
    (
        {"command_call_limit": {"MAIL": "x"}},
        "command_call_limit['MAIL'] must be an int, not 'x'",
    ),
    ({"line_length_limit": 1001.0}, "line_length_limit must be an int, not 1001.0"),
    ({"command_size_limit": None}, "command_size_limit must be an int, not None"),
    ({"local_part_limit": "64"}, "local_part_limit must be an int, not '64'"),
    ({"max_unknown_commands": 2.0}, "max_unknown_commands must be an int, not 2.0"),
    ({"require_starttls": 1}, "require_starttls must be True or False, not 1"),
    (
        {"tls_context": ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)},
        "tls_context must be Twisted TLS options (e.g. from"
        " twisted_smtpd.tlsOptionsFromFiles or"
        " twisted.internet.ssl.CertificateOptions), not an ssl.SSLContext",
    ),
    (
        {"tls_context": "cert.pem"},
        "tls_context must be Twisted TLS options, not 'cert.pem'",
    ),
    ({"implicit_tls": None}, "implicit_tls must be True or False, not None"),
    ({"auth_required": "no"}, "auth_required must be True or False, not 'no'"),
    ({"auth_require_tls": 0}, "auth_require_tls must be True or False, not 0"),
    ({"auth_failure_limit": "3"}, "auth_failure_limit must be an int, not '3'"),
    ({"authenticator": 5}, "authenticator must be callable, not 5"),
    ({"auth_callback": "f"}, "auth_callback must be callable, not 'f'"),
    (
        {"portal": 5},
        "portal must be a twisted.cred Portal or credentials checker, not 5",
    ),
    (
        {"auth_exclude_mechanism": "PLAIN"},
        "auth_exclude_mechanism must be a list of names, not a str",
    ),
    (
        {"proxy_protocol_timeout": "3"},
        "proxy_protocol_timeout must be a number of seconds, not '3'",
    ),
    ({"colour": 1, "flavour": 2}, "unknown option(s): colour, flavour"),
]

#: Options and the L{ValueError} each gets, word for word.
VALUE_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"data_size_limit": -1}, "data_size_limit must be at least 0, not -1"),
    ({"hostname": "mx\r\n.example"}, "hostname must not contain CR, LF or NUL"),
    ({"ident": "Test\0SMTP"}, "ident must not contain CR, LF or NUL"),
    (
        {"hostname": "bad host"},
        "hostname must be a domain in ASCII without spaces (for a name in"
        " Unicode, give name.encode(\"idna\").decode()), not 'bad host'",
    ),
    (
        {"hostname": ""},
        "hostname must be a domain in ASCII without spaces (for a name in"
        " Unicode, give name.encode(\"idna\").decode()), not ''",
    ),
    ({"timeout": 0}, "timeout must be positive, not 0"),
    ({"timeout": -1.5}, "timeout must be positive, not -1.5"),
    ({"command_call_limit": 0}, "command_call_limit must be at least 1, not 0"),
    (
        {"command_call_limit": {"MAIL": 0}},
        "command_call_limit['MAIL'] must be at least 1, not 0",
    ),
    ({"line_length_limit": 99}, "line_length_limit must be at least 100, not 99"),
    ({"command_size_limit": 63}, "command_size_limit must be at least 64, not 63"),
    (
        {"command_size_limit": 1002},
        "command_size_limit must not exceed line_length_limit",
    ),
    (
        {"line_length_limit": 200, "command_size_limit": 201},
        "command_size_limit must not exceed line_length_limit",
    ),
    ({"local_part_limit": -1}, "local_part_limit must be at least 0, not -1"),
    (
        {"bare_newline": "bogus"},
        "bare_newline must be one of ('reject', 'allow'), not 'bogus'",
    ),
    ({"max_unknown_commands": 0}, "max_unknown_commands must be at least 1, not 0"),
    ({"require_starttls": True}, "require_starttls needs a tls_context"),
    ({"implicit_tls": True}, "implicit_tls needs a tls_context"),
    ({"auth_failure_limit": 0}, "auth_failure_limit must be at least 1, not 0"),
    (
        {"authenticator": lambda *a: None, "portal": Portal(None)},
        "give only one of authenticator, portal",
    ),
    (
        {
            "authenticator": lambda *a: None,
            "auth_callback": lambda *a: None,
            "portal": Portal(None),
        },
        "give only one of authenticator, auth_callback, portal",
    ),
    ({"proxy_protocol_timeout": 0}, "proxy_protocol_timeout must be positive"),
]


class RefusalTests(SynchronousTestCase):
    """
    Every bad option value or combination is refused by L{makeConfig} with
    the exception and message it always had.
    """

    def setUp(self) -> None:
        # The deprecated auth_callback warns; these tests are not about that.
        self.catcher = warnings.catch_warnings()
        self.catcher.__enter__()
        self.addCleanup(self.catcher.__exit__, None, None, None)
        warnings.simplefilter("ignore", DeprecationWarning)

    def test_typeErrors(self) -> None:
        """
        A value of the wrong type, or an unknown option, is a L{TypeError}
        naming the option.
        """
        for options, message in TYPE_ERRORS:
            error = self.assertRaises(TypeError, config, **options)
            self.assertEqual(str(error), message, options)

    def test_valueErrors(self) -> None:
        """
        A value out of range, or options that cannot go together, is a
        L{ValueError} naming the option.
        """
        for options, message in VALUE_ERRORS:
            error = self.assertRaises(ValueError, config, **options)
            self.assertEqual(str(error), message, options)

    def test_sameFromFactory(self) -> None:
        """
        L{SMTPFactory} refuses with the same exceptions, before making
        anything.
        """
        for options, message in TYPE_ERRORS[:3]:
            error = self.assertRaises(TypeError, SMTPFactory, Handler(), **options)
            self.assertEqual(str(error), message)
        for options, message in VALUE_ERRORS[:3]:
            error = self.assertRaises(ValueError, SMTPFactory, Handler(), **options)
            self.assertEqual(str(error), message)

    def test_noHandler(self) -> None:
        """
        A C{None} handler is a L{TypeError} that points to the sink.
        """
        error = self.assertRaises(TypeError, makeConfig, None, reactor=Clock())
        self.assertEqual(
            str(error), "a handler is required (use handlers.Sink() to discard)"
        )

    def test_unknownBeforeValues(self) -> None:
        """
        An unknown option is reported before the values of known ones are
        checked.
        """
        error = self.assertRaises(TypeError, config, colour=1, data_size_limit=-1)
        self.assertEqual(str(error), "unknown option(s): colour")

    def test_firstInOrder(self) -> None:
        """
        With several bad values, the first option in the order of
        L{SMTPOptions} is the one reported.
        """
        error = self.assertRaises(
            ValueError, config, proxy_protocol_timeout=0, data_size_limit=-1
        )
        self.assertEqual(str(error), "data_size_limit must be at least 0, not -1")

    def test_hookNotCallable(self) -> None:
        """
        A C{handle_<VERB>} attribute that is not callable is a
        L{TypeError}.
        """

        class Broken:
            handle_RCPT = "250 OK"

        error = self.assertRaises(TypeError, makeConfig, Broken(), reactor=Clock())
        self.assertEqual(str(error), "handler.handle_RCPT must be callable")


class WarningTests(SynchronousTestCase):
    """
    Options that work but are unwise warn, pointing at the code that made
    the factory.
    """

    def test_authCallbackDeprecated(self) -> None:
        """
        C{auth_callback} warns with L{DeprecationWarning}, attributed to
        the caller of L{SMTPFactory}.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            SMTPFactory(Handler(), reactor=Clock(), auth_callback=lambda *a: True)
        [warning] = caught
        self.assertIs(warning.category, DeprecationWarning)
        self.assertEqual(
            str(warning.message),
            "auth_callback is deprecated; use authenticator or portal",
        )
        self.assertEqual(warning.filename, __file__)

    def test_authRequiredInPlaintext(self) -> None:
        """
        C{auth_required} without C{auth_require_tls} warns with
        L{UserWarning}, attributed to the caller of L{SMTPFactory}.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            SMTPFactory(
                Handler(),
                reactor=Clock(),
                authenticator=lambda *a: None,
                auth_required=True,
                auth_require_tls=False,
            )
        [warning] = caught
        self.assertIs(warning.category, UserWarning)
        self.assertEqual(
            str(warning.message),
            "auth_required without auth_require_tls lets passwords travel in plaintext",
        )
        self.assertEqual(warning.filename, __file__)

    def test_noWarning(self) -> None:
        """
        Sound options do not warn.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config(authenticator=lambda *a: None, auth_required=True)
        self.assertEqual(caught, [])


class ConfigTests(SynchronousTestCase):
    """
    Tests for the L{Config} that L{makeConfig} returns.
    """

    def test_frozen(self) -> None:
        """
        No attribute of a configuration can be assigned, nor its mappings
        changed: it is shared by every connection of a factory.
        """
        made = config(command_call_limit=3)
        for name in ["hostname", "data_size_limit", "hooks", "newAttribute"]:
            self.assertRaises(exceptions.FrozenInstanceError, setattr, made, name, None)
        self.assertRaises(TypeError, setitem, made.hooks, "RCPT", None)
        self.assertRaises(TypeError, setitem, made.handlerMechanisms, "X", None)
        self.assertRaises(TypeError, setitem, made.callLimits, "MAIL", 1)

    def test_equalOnlyToItself(self) -> None:
        """
        Two configurations made from the same options are still two.
        """
        handler, clock = Handler(), Clock()
        first = makeConfig(handler, reactor=clock, hostname="mx.example")
        second = makeConfig(handler, reactor=clock, hostname="mx.example")
        self.assertEqual(first, first)
        self.assertNotEqual(first, second)

    def test_defaults(self) -> None:
        """
        Without options, the configuration has aiosmtpd's defaults.
        """
        made = config()
        self.assertEqual(
            (
                made.data_size_limit,
                made.enable_SMTPUTF8,
                made.decode_data,
                made.ident,
                made.timeout,
                made.callLimits,
                made.line_length_limit,
                made.command_size_limit,
                made.local_part_limit,
                made.allowBareNewline,
                made.eightBitMIME,
                made.max_unknown_commands,
                made.proxy_protocol_timeout,
                made.implicit_tls,
                made.gated,
            ),
            (
                DATA_SIZE_DEFAULT,
                False,
                False,
                None,
                300,
                None,
                1001,
                512,
                0,
                False,
                True,
                5,
                None,
                False,
                False,
            ),
        )
        self.assertEqual(
            (
                made.tls_context,
                made.require_starttls,
                made.authenticator,
                made.auth_callback,
                made.portal,
                made.auth_required,
                made.auth_require_tls,
                made.auth_exclude_mechanism,
                made.auth_failure_limit,
            ),
            (None, False, None, None, None, False, True, frozenset(), 3),
        )

    def test_dataSizeLimitNormalised(self) -> None:
        """
        A C{data_size_limit} of 0 means no limit and is kept as C{None};
        other values are kept as given.
        """
        self.assertIsNone(config(data_size_limit=0).data_size_limit)
        self.assertIsNone(config(data_size_limit=None).data_size_limit)
        self.assertEqual(config(data_size_limit=1000).data_size_limit, 1000)

    def test_callLimitsNormalised(self) -> None:
        """
        C{command_call_limit} becomes limits by verb in upper case, with
        C{"*"} for the other verbs: the number given alone, else 20.
        """
        self.assertEqual(config(command_call_limit=5).callLimits, {"*": 5})
        self.assertEqual(
            config(command_call_limit={"mail": 3}).callLimits, {"MAIL": 3, "*": 20}
        )
        self.assertEqual(
            config(command_call_limit={"*": 7, "Rcpt": 2}).callLimits,
            {"*": 7, "RCPT": 2},
        )

    def test_idleTimer(self) -> None:
        """
        A timeout gets one L{IdleTimer} on the reactor; no timeout, none.
        """
        self.assertIsInstance(config().idle, IdleTimer)
        self.assertIsNone(config(timeout=None).idle)

    def test_hostname(self) -> None:
        """
        Without a C{hostname}, the configuration has this machine's name,
        looked up once per process.
        """
        calls = []
        self.patch(_config, "_fqdn", None)
        self.patch(socket, "getfqdn", lambda: calls.append(1) or "fqdn.example")
        self.assertEqual(config(hostname=None).hostname, "fqdn.example")
        self.assertEqual(defaultHostname(), "fqdn.example")
        self.assertEqual(calls, [1])
        self.assertEqual(config(hostname="given.example").hostname, "given.example")

    def test_bareNewline(self) -> None:
        """
        C{bare_newline} becomes the flag C{allowBareNewline}.
        """
        self.assertEqual(BARE_NEWLINE_POLICIES, ("reject", "allow"))
        self.assertIs(config(bare_newline="allow").allowBareNewline, True)
        self.assertIs(config(bare_newline="reject").allowBareNewline, False)

    def test_eightBitMIME(self) -> None:
        """
        8BITMIME is offered unless the data is decoded, and always with
        SMTPUTF8 (RFC 6531 section 3.1).
        """
        self.assertIs(config().eightBitMIME, True)
        self.assertIs(config(decode_data=True).eightBitMIME, False)
        self.assertIs(config(decode_data=True, enable_SMTPUTF8=True).eightBitMIME, True)

    def test_gated(self) -> None:
        """
        Commands are gated when STARTTLS or AUTH is required.
        """
        tls = FakeTLSOptions()
        self.assertIs(config(tls_context=tls).gated, False)
        self.assertIs(config(tls_context=tls, require_starttls=True).gated, True)
        self.assertIs(
            config(authenticator=lambda *a: None, auth_required=True).gated, True
        )

    def test_tls(self) -> None:
        """
        TLS options are kept as given, with C{require_starttls} and
        C{implicit_tls}.
        """
        tls = FakeTLSOptions()
        made = config(tls_context=tls, implicit_tls=True)
        self.assertIs(made.tls_context, tls)
        self.assertIs(made.implicit_tls, True)
        self.assertIs(
            config(tls_context=tls, require_starttls=True).require_starttls, True
        )

    def test_portal(self) -> None:
        """
        A credentials checker is put behind a L{Portal}; a L{Portal} is
        kept as it is.
        """
        checker = InMemoryUsernamePasswordDatabaseDontUse(user=b"secret")
        made = config(portal=checker)
        self.assertIsInstance(made.portal, Portal)
        self.assertEqual(set(made.portal.checkers.values()), {checker})
        portal = Portal(None)
        self.assertIs(config(portal=portal).portal, portal)

    def test_excludedMechanisms(self) -> None:
        """
        C{auth_exclude_mechanism} becomes a set of names in upper case.
        """
        made = config(auth_exclude_mechanism=["plain", "Login"])
        self.assertEqual(made.auth_exclude_mechanism, frozenset({"PLAIN", "LOGIN"}))

    def test_reactor(self) -> None:
        """
        The reactor given is kept, with no asyncio loop behind a L{Clock}.
        """
        clock = Clock()
        made = makeConfig(Handler(), reactor=clock, hostname="mx.example")
        self.assertIs(made.reactor, clock)
        self.assertIsNone(made.asyncioLoop)

    def test_handler(self) -> None:
        """
        The handler's hooks and AUTH mechanisms are found once, by verb and
        by mechanism name.
        """
        handler = Handler()
        made = makeConfig(handler, reactor=Clock(), hostname="mx.example")
        self.assertIs(made.handler, handler)
        self.assertEqual(
            dict(made.hooks),
            {"DATA": handler.handle_DATA, "EHLO": handler.handle_EHLO},
        )
        self.assertEqual(made.ehloStyle, "new")
        self.assertEqual(
            dict(made.handlerMechanisms),
            {"PLAIN": handler.auth_PLAIN, "X_OWN-MECH": handler.auth_X_OWN__MECH},
        )


class FindTests(SynchronousTestCase):
    """
    Tests for L{findHooks}, L{findMechanisms} and L{callLimits}.
    """

    def test_hookNames(self) -> None:
        """
        Only the hooks of L{HOOK_NAMES} are looked for.
        """

        class Every:
            pass

        for verb in HOOK_NAMES + ("HELP",):
            setattr(Every, "handle_" + verb, lambda self, *a: None)
        hooks, style = findHooks(Every())
        self.assertEqual(sorted(hooks), sorted(HOOK_NAMES))

    def test_ehloStyle(self) -> None:
        """
        A C{handle_EHLO} without the C{responses} argument is the old form.
        """
        self.assertEqual(findHooks(OldEHLOHandler())[1], "old")
        self.assertEqual(findHooks(Handler())[1], "new")
        self.assertEqual(findHooks(object())[1], "new")

    def test_mechanisms(self) -> None:
        """
        C{auth_<NAME>} methods are found by mechanism name, C{__} read as
        C{-}.
        """
        self.assertEqual(sorted(findMechanisms(Handler())), ["PLAIN", "X_OWN-MECH"])
        self.assertEqual(findMechanisms(object()), {})

    def test_callLimits(self) -> None:
        """
        L{callLimits} keeps C{None} and makes read-only limits by verb.
        """
        self.assertIsNone(callLimits(None))
        limits = callLimits({"noop": 2})
        self.assertEqual(limits, {"NOOP": 2, "*": 20})
        self.assertRaises(TypeError, setitem, limits, "*", 1)


class SMTPOptionsTests(SynchronousTestCase):
    """
    Tests for L{SMTPOptions}, the table of the server's options.
    """

    def test_names(self) -> None:
        """
        L{OPTION_NAMES} are the fields of L{SMTPOptions}, each accepted by
        L{SMTPFactory} with its default.
        """
        self.assertEqual(OPTION_NAMES, {f.name for f in fields(SMTPOptions)})
        defaults = {f.name: f.default for f in fields(SMTPOptions)}
        SMTPFactory(Handler(), reactor=Clock(), **{**defaults, "hostname": "mx"})

    def test_frozen(self) -> None:
        """
        The options as given cannot be changed either.
        """
        options = SMTPOptions()
        self.assertRaises(
            exceptions.FrozenInstanceError, setattr, options, "timeout", 5
        )

    def test_keywordsOnly(self) -> None:
        """
        Options are given by name only.
        """
        self.assertRaises(TypeError, SMTPOptions, DATA_SIZE_DEFAULT)


class ValidatorTests(SynchronousTestCase):
    """
    Tests for the validators of L{twisted_smtpd._validate} on their own.
    """

    def attribute(self, name: str) -> Any:
        """
        Return the attrs field C{name} of L{SMTPOptions}, as a validator
        gets it.
        """
        return getattr(fields(SMTPOptions), name)

    def test_checkInt(self) -> None:
        """
        L{checkInt} accepts an C{int} of at least the minimum, and C{None}
        only when told.
        """
        checkInt("n", 3, 3)
        checkInt("n", None, 3, allowNone=True)
        self.assertEqual(
            str(self.assertRaises(TypeError, checkInt, "n", None, 3)),
            "n must be an int, not None",
        )
        self.assertEqual(
            str(self.assertRaises(TypeError, checkInt, "n", False, 0)),
            "n must be an int, not False",
        )
        self.assertEqual(
            str(self.assertRaises(ValueError, checkInt, "n", 2, 3)),
            "n must be at least 3, not 2",
        )

    def test_integer(self) -> None:
        """
        L{integer} makes a validator that names the field.
        """
        check = integer(100)
        check(None, self.attribute("line_length_limit"), 100)
        error = self.assertRaises(
            ValueError, check, None, self.attribute("line_length_limit"), 5
        )
        self.assertEqual(str(error), "line_length_limit must be at least 100, not 5")

    def test_boolean(self) -> None:
        """
        L{boolean} accepts only C{True} and C{False}.
        """
        boolean(None, self.attribute("decode_data"), False)
        self.assertRaises(TypeError, boolean, None, self.attribute("decode_data"), 0)

    def test_needs(self) -> None:
        """
        L{needs} refuses a true value while the other field is C{None}.
        """
        check = needs("tls_context")
        attribute = self.attribute("require_starttls")
        without = SimpleNamespace(tls_context=None)
        check(without, attribute, False)
        error = self.assertRaises(ValueError, check, without, attribute, True)
        self.assertEqual(str(error), "require_starttls needs a tls_context")
        check(SimpleNamespace(tls_context=FakeTLSOptions()), attribute, True)

    def test_onlyOne(self) -> None:
        """
        L{onlyOne} names the fields that are set when more than one is.
        """
        check = onlyOne("authenticator", "auth_callback", "portal")
        attribute = self.attribute("authenticator")
        one = SimpleNamespace(authenticator=print, auth_callback=None, portal=None)
        check(one, attribute, print)
        two = SimpleNamespace(authenticator=print, auth_callback=None, portal=1)
        error = self.assertRaises(ValueError, check, two, attribute, print)
        self.assertEqual(str(error), "give only one of authenticator, portal")


class OptionValidationTests(SynchronousTestCase):
    """
    Options are checked when the factory is made.
    """

    def test_dataSizeLimitType(self) -> None:
        """
        A non-int C{data_size_limit} raises L{TypeError}.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), data_size_limit="x")
        self.assertRaises(TypeError, SMTPFactory, Collector(), data_size_limit=1.5)
        self.assertRaises(TypeError, SMTPFactory, Collector(), data_size_limit=True)

    def test_dataSizeLimitNegative(self) -> None:
        """
        A negative C{data_size_limit} raises L{ValueError}.
        """
        self.assertRaises(ValueError, SMTPFactory, Collector(), data_size_limit=-1)

    def test_unknownOption(self) -> None:
        """
        An unknown option raises L{TypeError}, for the factory and the
        protocol alike.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), bogus=1)
        self.assertRaises(TypeError, SMTP, Collector(), bogus=1)

    def test_callLimitValue(self) -> None:
        """
        A C{command_call_limit} dict with a non-int value raises
        L{TypeError}.
        """
        self.assertRaises(
            TypeError, SMTPFactory, Collector(), command_call_limit={"MAIL": "x"}
        )
        self.assertRaises(TypeError, SMTPFactory, Collector(), command_call_limit="5")

    def test_bareNewline(self) -> None:
        """
        An unknown C{bare_newline} policy raises L{ValueError}.
        """
        self.assertRaises(ValueError, SMTPFactory, Collector(), bare_newline="bogus")

    def test_maxRecipients(self) -> None:
        """
        C{max_recipients} is C{0} (no limit) or at least 100, which RFC 5321
        requires a server to take; other values raise L{ValueError} saying
        so, and a non-int L{TypeError}.
        """
        for value in [0, 100, 1000, 50000]:
            self.assertEqual(config(max_recipients=value).max_recipients, value)
        for value in [1, 50, 99]:
            error = self.assertRaises(ValueError, config, max_recipients=value)
            self.assertEqual(
                str(error),
                "max_recipients must be 0 (no limit) or at least 100 (RFC 5321"
                " section 4.5.3.1.8 requires room for 100 recipients),"
                f" not {value}",
            )
        error = self.assertRaises(ValueError, config, max_recipients=-1)
        self.assertEqual(str(error), "max_recipients must be at least 0, not -1")
        for value in [None, True, 100.0, "100"]:
            self.assertRaises(TypeError, config, max_recipients=value)

    def test_errorLimits(self) -> None:
        """
        C{hard_error_limit} and C{junk_command_limit} are ints of at least
        C{0}, which means no limit.
        """
        for name in ["hard_error_limit", "junk_command_limit"]:
            for value in [0, 1, 500]:
                self.assertEqual(getattr(config(**{name: value}), name), value)
            error = self.assertRaises(ValueError, config, **{name: -1})
            self.assertEqual(str(error), f"{name} must be at least 0, not -1")
            for value in [None, False, 1.5, "20"]:
                self.assertRaises(TypeError, config, **{name: value})

    def test_limitDefaults(self) -> None:
        """
        The limits of a public MX default to Postfix's: 1000 recipients, 20
        errors, 100 junk commands.
        """
        made = config()
        self.assertEqual(
            (made.max_recipients, made.hard_error_limit, made.junk_command_limit),
            (1000, 20, 100),
        )

    def test_handlerNone(self) -> None:
        """
        A C{None} handler raises L{TypeError}.
        """
        self.assertRaises(TypeError, SMTPFactory, None)

    def test_protocolNotSMTP(self) -> None:
        """
        A C{protocol} that is not an L{SMTP} subclass raises L{TypeError}.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), protocol=object)
        self.assertRaises(TypeError, SMTPFactory, Collector(), protocol="SMTP")

    def test_booleans(self) -> None:
        """
        C{enable_SMTPUTF8} and C{decode_data} must be booleans.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), enable_SMTPUTF8=1)
        self.assertRaises(TypeError, SMTPFactory, Collector(), decode_data="yes")

    def test_hostname(self) -> None:
        """
        A hostname with a space, a control character or non-ASCII letters
        raises L{ValueError} naming the way to an A-label; a plain domain
        and an address literal are fine.
        """
        for bad in ("bad host", "mx.exämple.com", "a\tb", "", "a\r\nb"):
            e = self.assertRaises(ValueError, SMTPFactory, Collector(), hostname=bad)
            self.assertIn("hostname", str(e))
        e = self.assertRaises(
            ValueError, SMTPFactory, Collector(), hostname="mx.exämple.com"
        )
        self.assertIn('encode("idna")', str(e))
        for good in ("mx.example.com", "[192.0.2.1]", "xn--exmple-cua.com"):
            tester = SMTPTester(Collector(), hostname=good)
            self.assertEqual(tester.server.hostname, good)
        self.assertRaises(TypeError, SMTPFactory, Collector(), hostname=b"mx")

    def test_timeout(self) -> None:
        """
        A timeout must be a positive number.
        """
        self.assertRaises(TypeError, SMTPFactory, Collector(), timeout="10")
        self.assertRaises(ValueError, SMTPFactory, Collector(), timeout=0)

    def test_valid(self) -> None:
        """
        Valid options make a factory whose protocols see them.
        """
        factory = SMTPFactory(
            Collector(),
            reactor=Clock(),
            protocol=PingSMTP,
            hostname=HOST,
            data_size_limit=1000,
            enable_SMTPUTF8=True,
            command_call_limit={"MAIL": 3, "*": 10},
            bare_newline="allow",
        )
        server, transport = connect(factory)
        self.assertIsInstance(server, PingSMTP)
        self.assertEqual(server.hostname, HOST)
        self.assertEqual(server.data_size_limit, 1000)
        self.assertTrue(server.enable_SMTPUTF8)


class DefaultHostnameTests(SynchronousTestCase):
    """
    The host name used when none is given.
    """

    def test_resolvedOncePerProcess(self) -> None:
        """
        The FQDN is looked up once, not once per factory or connection.
        """
        calls = []

        def getfqdn(name: str = "") -> str:
            calls.append(name)
            return "fqdn.example"

        self.patch(_config, "_fqdn", None)
        self.patch(socket, "getfqdn", getfqdn)
        factory = SMTPFactory(Collector(), reactor=Clock())
        first, firstTransport = connect(factory)
        second, secondTransport = connect(factory)
        other = SMTPTester(Collector())
        self.assertEqual(len(calls), 1)
        self.assertTrue(firstTransport.value().startswith(b"220 fqdn.example "))
        self.assertTrue(secondTransport.value().startswith(b"220 fqdn.example "))
        self.assertEqual(other.greeting.text.split()[0], "fqdn.example")
        self.assertEqual(other.command("HELO c.example"), Reply(250, "fqdn.example"))
        self.assertEqual(len(calls), 1)

    def test_hostnameOption(self) -> None:
        """
        With C{hostname} given, no lookup happens at all.
        """
        calls = []
        self.patch(_config, "_fqdn", None)
        self.patch(socket, "getfqdn", lambda name="": calls.append(name) or "x")
        tester = SMTPTester(Collector(), hostname="given.example")
        self.assertEqual(calls, [])
        self.assertTrue(tester.greeting.text.startswith("given.example "))
