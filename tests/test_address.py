"""
Tests for L{twisted_smtpd._address}.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._address import (
    PathRefused,
    PathSyntaxError,
    parseParameters,
    parsePath,
    splitArgument,
)

MALFORMED = "553 5.1.3 Error: malformed address"
NO_DOMAIN = "553 5.1.3 Error: address must have a domain"
NULL_REFUSED = "553 5.1.3 Error: null address not allowed here"
NON_ASCII = "553 5.6.7 Error: non-ASCII address requires SMTPUTF8"
TOO_LONG = "553 5.1.3 Error: local part too long"

ATEXT = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
LET_DIG = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class PathTestMixin:
    """
    Helpers asserting what L{parsePath} returns or refuses.
    """

    def assertParses(self, path: str, expected: str, **kwargs: object) -> None:
        """
        Assert that C{parsePath(path, **kwargs)} returns C{expected}.
        """
        self.assertEqual(parsePath(path, **kwargs), expected)

    def assertRefused(self, path: str, reply: str, **kwargs: object) -> None:
        """
        Assert that C{parsePath(path, **kwargs)} raises L{PathRefused} with
        the reply C{reply}.
        """
        exc = self.assertRaises(PathRefused, parsePath, path, **kwargs)
        self.assertEqual(exc.reply, reply)


class ExceptionTests(SynchronousTestCase):
    """
    Tests for L{PathRefused} and L{PathSyntaxError}.
    """

    def test_refusedReply(self) -> None:
        """
        L{PathRefused} keeps its reply line as C{reply} and as its message.
        """
        exc = PathRefused("553 5.1.3 Error: nope")
        self.assertEqual(exc.reply, "553 5.1.3 Error: nope")
        self.assertEqual(str(exc), "553 5.1.3 Error: nope")

    def test_valueErrors(self) -> None:
        """
        Both exceptions are L{ValueError}s.
        """
        self.assertIsInstance(PathRefused("553 x"), ValueError)
        self.assertIsInstance(PathSyntaxError("x"), ValueError)


class SplitArgumentTests(SynchronousTestCase):
    """
    Tests for L{splitArgument}.
    """

    def test_pathOnly(self) -> None:
        """
        A bracketed path without parameters gives an empty parameter string.
        """
        self.assertEqual(
            splitArgument("FROM:<user@example.com>", "FROM"),
            ("<user@example.com>", ""),
        )

    def test_parameters(self) -> None:
        """
        Everything after the path is the parameter string.
        """
        self.assertEqual(
            splitArgument("FROM:<a@example.com> SIZE=10 BODY=8BITMIME", "FROM"),
            ("<a@example.com>", "SIZE=10 BODY=8BITMIME"),
        )

    def test_keywordCaseInsensitive(self) -> None:
        """
        The keyword matches in any case, whatever the case it is given in.
        """
        self.assertEqual(splitArgument("fRoM:<a@b.c>", "FROM"), ("<a@b.c>", ""))
        self.assertEqual(splitArgument("TO:<a@b.c>", "to"), ("<a@b.c>", ""))

    def test_nonASCIIKeyword(self) -> None:
        """
        A non-ASCII letter whose upper case is an ASCII letter does not match.
        """
        self.assertRaises(PathSyntaxError, splitArgument, "\u017fIZE:<a@b.c>", "SIZE")

    def test_wrongKeyword(self) -> None:
        """
        Another keyword is a syntax error.
        """
        self.assertRaises(PathSyntaxError, splitArgument, "TO:<a@b.c>", "FROM")

    def test_keywordPrefix(self) -> None:
        """
        The keyword must be followed directly by the colon and be complete.
        """
        self.assertRaises(PathSyntaxError, splitArgument, "FROMAGE:<a@b.c>", "FROM")
        self.assertRaises(PathSyntaxError, splitArgument, "FRO:<a@b.c>", "FROM")

    def test_missingColon(self) -> None:
        """
        A keyword without its colon is a syntax error.
        """
        self.assertRaises(PathSyntaxError, splitArgument, "FROM <a@b.c>", "FROM")
        self.assertRaises(PathSyntaxError, splitArgument, "FROM", "FROM")
        self.assertRaises(PathSyntaxError, splitArgument, "", "FROM")

    def test_spaceBeforeColon(self) -> None:
        """
        A space between the keyword and the colon is a syntax error.
        """
        self.assertRaises(PathSyntaxError, splitArgument, "FROM :<a@b.c>", "FROM")

    def test_spacesAfterColon(self) -> None:
        """
        Spaces after the colon, between path and parameters and at the end are
        tolerated and removed.
        """
        self.assertEqual(
            splitArgument("FROM:   <a@b.c>   SIZE=1  BODY=7BIT  ", "FROM"),
            ("<a@b.c>", "SIZE=1  BODY=7BIT"),
        )

    def test_emptyPath(self) -> None:
        """
        A missing path is a syntax error, with or without spaces.
        """
        self.assertRaises(PathSyntaxError, splitArgument, "FROM:", "FROM")
        self.assertRaises(PathSyntaxError, splitArgument, "FROM:   ", "FROM")

    def test_missingClosingBracket(self) -> None:
        """
        A path opened by C{<} and never closed is a syntax error.
        """
        self.assertRaises(PathSyntaxError, splitArgument, "FROM:<a@b.c", "FROM")
        self.assertRaises(PathSyntaxError, splitArgument, "FROM:<a@b.c SIZE=1", "FROM")

    def test_quotedSpaceAndBracket(self) -> None:
        """
        A quoted local part may contain spaces and C{>}.
        """
        self.assertEqual(
            splitArgument('FROM:<"a b>c"@x.y> SIZE=1', "FROM"),
            ('<"a b>c"@x.y>', "SIZE=1"),
        )

    def test_quotedEscapes(self) -> None:
        """
        An escaped double quote does not end the quoted string.
        """
        self.assertEqual(
            splitArgument('FROM:<"a\\"> b"@x.y> SIZE=1', "FROM"),
            ('<"a\\"> b"@x.y>', "SIZE=1"),
        )

    def test_unterminatedQuote(self) -> None:
        """
        An unterminated quoted string leaves the path unclosed.
        """
        self.assertRaises(PathSyntaxError, splitArgument, 'FROM:<"a b@x.y>', "FROM")
        self.assertRaises(PathSyntaxError, splitArgument, 'FROM:<"a\\"@x.y>', "FROM")

    def test_barePath(self) -> None:
        """
        A path without brackets ends at the first space.
        """
        self.assertEqual(
            splitArgument("FROM:a@b.c SIZE=1", "FROM"), ("a@b.c", "SIZE=1")
        )
        self.assertEqual(splitArgument("FROM: a@b.c", "FROM"), ("a@b.c", ""))

    def test_nullPath(self) -> None:
        """
        The null path is split like any other.
        """
        self.assertEqual(splitArgument("FROM:<> SIZE=0", "FROM"), ("<>", "SIZE=0"))

    def test_parametersWithoutSpace(self) -> None:
        """
        Parameters directly after the closing bracket are accepted, as
        aiosmtpd accepts them.
        """
        self.assertEqual(
            splitArgument("FROM:<a@b.c>SIZE=1", "FROM"), ("<a@b.c>", "SIZE=1")
        )

    def test_sourceRoute(self) -> None:
        """
        A source route stays part of the path.
        """
        self.assertEqual(
            splitArgument("TO:<@a.example,@b.example:c@d.example> NOTIFY=NEVER", "TO"),
            ("<@a.example,@b.example:c@d.example>", "NOTIFY=NEVER"),
        )

    def test_firstClosingBracket(self) -> None:
        """
        Outside quotes the path ends at the first C{>}; what follows is left
        for the parameter parser to refuse.
        """
        self.assertEqual(splitArgument("FROM:<a@b.c>>", "FROM"), ("<a@b.c>", ">"))


class MailboxTests(PathTestMixin, SynchronousTestCase):
    """
    Tests for the local part and domain of L{parsePath}.
    """

    def test_simple(self) -> None:
        """
        The brackets are removed and the mailbox returned as written.
        """
        self.assertParses("<user@example.com>", "user@example.com")
        self.assertParses("<User@Example.COM>", "User@Example.COM")

    def test_atextSpecials(self) -> None:
        """
        Every atext character is allowed in a Dot-string.
        """
        local = "!#$%&'*+-/=?^_`{|}~"
        self.assertParses(f"<{local}@example.com>", f"{local}@example.com")

    def test_dotString(self) -> None:
        """
        Atoms may be joined by single dots.
        """
        self.assertParses("<first.m.last@example.com>", "first.m.last@example.com")

    def test_badDots(self) -> None:
        """
        Leading, trailing and doubled dots in a Dot-string are malformed.
        """
        self.assertRefused("<.user@example.com>", MALFORMED)
        self.assertRefused("<user.@example.com>", MALFORMED)
        self.assertRefused("<us..er@example.com>", MALFORMED)
        self.assertRefused("<.@example.com>", MALFORMED)

    def test_emptyLocalPart(self) -> None:
        """
        A mailbox needs a local part.
        """
        self.assertRefused("<@example.com>", MALFORMED)

    def test_twoAtSigns(self) -> None:
        """
        An unquoted C{@} in the local part is malformed.
        """
        self.assertRefused("<a@b@example.com>", MALFORMED)

    def test_notAtext(self) -> None:
        """
        Specials and spaces outside quotes are malformed.
        """
        for local in ["a b", "a(b)", "a,b", "a\\b", "a;b", "a:b", 'a"b', "a[b]"]:
            self.assertRefused(f"<{local}@example.com>", MALFORMED)
        self.assertRefused("< a@example.com>", MALFORMED)
        self.assertRefused("<a@example.com >", MALFORMED)

    def test_quotedSpace(self) -> None:
        """
        A quoted local part is returned with its quotes.
        """
        self.assertParses('<"john doe"@example.com>', '"john doe"@example.com')

    def test_quotedEscapes(self) -> None:
        """
        Backslash escapes in a quoted local part are returned as written.
        """
        self.assertParses('<"a\\"b"@example.com>', '"a\\"b"@example.com')
        self.assertParses('<"a\\\\b"@example.com>', '"a\\\\b"@example.com')
        self.assertParses('<"\\a"@example.com>', '"\\a"@example.com')

    def test_quotedSpecials(self) -> None:
        """
        A quoted local part may contain C{>}, C{@}, C{<} and other specials.
        """
        self.assertParses('<"a>b"@example.com>', '"a>b"@example.com')
        self.assertParses('<"a@b"@example.com>', '"a@b"@example.com')
        self.assertParses('<"<a>,(b);:"@example.com>', '"<a>,(b);:"@example.com')

    def test_emptyQuoted(self) -> None:
        """
        An empty quoted string is a valid local part (RFC 5321 grammar).
        """
        self.assertParses('<""@example.com>', '""@example.com')

    def test_badQuoted(self) -> None:
        """
        Unterminated quotes, text after the closing quote and a quote escaped
        at the end are malformed.
        """
        self.assertRefused('<"abc@example.com>', MALFORMED)
        self.assertRefused('<"a"b@example.com>', MALFORMED)
        self.assertRefused('<a"b"@example.com>', MALFORMED)
        self.assertRefused('<"a\\"@example.com>', MALFORMED)
        self.assertRefused('<"a"."b"@example.com>', MALFORMED)

    def test_hyphens(self) -> None:
        """
        Hyphens are allowed inside labels, also doubled.
        """
        self.assertParses("<a@my-host.example>", "a@my-host.example")
        self.assertParses("<a@xn--bcher-kva.example>", "a@xn--bcher-kva.example")

    def test_badHyphens(self) -> None:
        """
        A label may not start or end with a hyphen.
        """
        self.assertRefused("<a@-host.example>", MALFORMED)
        self.assertRefused("<a@host-.example>", MALFORMED)
        self.assertRefused("<a@host.-example>", MALFORMED)
        self.assertRefused("<a@->", MALFORMED)

    def test_badLabelCharacters(self) -> None:
        """
        Only letters, digits and hyphens may appear in a label.
        """
        self.assertRefused("<a@host_name.example>", MALFORMED)
        self.assertRefused("<a@host!.example>", MALFORMED)

    def test_singleAndNumericLabels(self) -> None:
        """
        A one-label domain and labels of digits are Domains.
        """
        self.assertParses("<a@localhost>", "a@localhost")
        self.assertParses("<a@123.example>", "a@123.example")

    def test_labelLength(self) -> None:
        """
        A label may have 63 characters, not 64.
        """
        self.assertParses(f"<a@{'x' * 63}.example>", f"a@{'x' * 63}.example")
        self.assertParses(f"<a@{'x' * 62}y>", f"a@{'x' * 62}y")
        self.assertRefused(f"<a@{'x' * 64}.example>", MALFORMED)
        self.assertRefused(f"<a@x{'-' * 62}y>", MALFORMED)

    def test_domainLength(self) -> None:
        """
        A domain may have 255 characters, not 256.
        """
        longest = ".".join(["x" * 63] * 4)
        tooLong = ".".join(["x" * 63] * 3 + ["x" * 62, "y"])
        self.assertEqual((len(longest), len(tooLong)), (255, 256))
        self.assertParses(f"<a@{longest}>", f"a@{longest}")
        self.assertRefused(f"<a@{tooLong}>", MALFORMED)

    def test_badDomainDots(self) -> None:
        """
        Empty labels, including a trailing dot, are malformed.
        """
        self.assertRefused("<a@example.com.>", MALFORMED)
        self.assertRefused("<a@.example.com>", MALFORMED)
        self.assertRefused("<a@example..com>", MALFORMED)
        self.assertRefused("<a@>", MALFORMED)
        self.assertRefused("<a@.>", MALFORMED)

    def test_controlCharacters(self) -> None:
        """
        NUL, CR, LF, TAB and DEL are malformed anywhere, quoted or escaped.
        """
        for control in "\x00\r\n\t\x7f\x1b":
            for path in [
                f"<a{control}b@example.com>",
                f"<ab@exam{control}ple.com>",
                f'<"a{control}b"@example.com>',
                f'<"a\\{control}b"@example.com>',
                f"<ab@example.com>{control}",
                f"{control}<ab@example.com>",
            ]:
                self.assertRefused(path, MALFORMED)
                self.assertRefused(path, MALFORMED, smtputf8=True)


class AddressLiteralTests(PathTestMixin, SynchronousTestCase):
    """
    Tests for address literals in L{parsePath}.
    """

    def test_ipv4(self) -> None:
        """
        An IPv4 literal is returned with its brackets.
        """
        self.assertParses("<a@[192.0.2.1]>", "a@[192.0.2.1]")
        self.assertParses("<a@[255.255.255.255]>", "a@[255.255.255.255]")

    def test_badIPv4(self) -> None:
        """
        Components above 255, the wrong number of components, leading zeros
        and stray characters are malformed.
        """
        for literal in [
            "300.1.1.1",
            "1.2.3.256",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.4 ",
            "1.2.3.4x",
            "1234.1.1.1",
            "",
            "x",
        ]:
            self.assertRefused(f"<a@[{literal}]>", MALFORMED)

    def test_ipv6(self) -> None:
        """
        An IPv6 literal is returned as written, with its tag in any case.
        """
        self.assertParses("<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]")
        self.assertParses("<a@[ipv6:::1]>", "a@[ipv6:::1]")
        self.assertParses("<a@[IPv6:::ffff:192.0.2.1]>", "a@[IPv6:::ffff:192.0.2.1]")
        self.assertParses(
            "<a@[IPv6:2001:DB8:0:0:0:0:0:1]>", "a@[IPv6:2001:DB8:0:0:0:0:0:1]"
        )

    def test_badIPv6(self) -> None:
        """
        A tag IPv6 with anything but an IPv6 address without a zone is
        malformed.
        """
        for literal in [
            "IPv6:zzz",
            "IPv6:",
            "IPv6:1.2.3.4",
            "IPv6:fe80::1%eth0",
            "IPv6:1:2:3:4:5:6:7:8:9",
            "IPv6:2001:db8:::1",
            "::1",
        ]:
            self.assertRefused(f"<a@[{literal}]>", MALFORMED)

    def test_general(self) -> None:
        """
        A General-address-literal is a tag, a colon and dcontent.
        """
        self.assertParses("<a@[x-tag:any:thing!]>", "a@[x-tag:any:thing!]")
        self.assertParses("<a@[X400:c=us;a=b]>", "a@[X400:c=us;a=b]")

    def test_untaggedIPv6(self) -> None:
        """
        An IPv6 address without its tag reads, per the grammar, as a general
        literal whose tag is its first group.
        """
        self.assertParses("<a@[2001:db8::1]>", "a@[2001:db8::1]")

    def test_badGeneral(self) -> None:
        """
        A tag that is not an Ldh-str, an empty content and characters outside
        dcontent are malformed.
        """
        for literal in [
            "tag-:x",
            "-:x",
            "ta_g:x",
            ":x",
            "tag:",
            "tag:a b",
            "tag:a\\b",
            "tag:a[b",
            "tag:a]b",
        ]:
            self.assertRefused(f"<a@[{literal}]>", MALFORMED)
        self.assertRefused("<a@[]>", MALFORMED)
        self.assertRefused("<a@[tag:x]y>", MALFORMED)
        self.assertRefused("<a@[tag:x>", MALFORMED)

    def test_nonASCIILiteral(self) -> None:
        """
        Address literals are ASCII even with SMTPUTF8.
        """
        self.assertRefused("<a@[tag:\xfc]>", MALFORMED, smtputf8=True)


class SourceRouteTests(PathTestMixin, SynchronousTestCase):
    """
    Tests for RFC 5321 source routes in L{parsePath}.
    """

    def test_oneHop(self) -> None:
        """
        A source route of one hop is removed.
        """
        self.assertParses("<@a.example:user@c.example>", "user@c.example")

    def test_severalHops(self) -> None:
        """
        A source route of several hops is removed.
        """
        self.assertParses(
            "<@a.example,@b.example,@b-2.example:user@c.example>", "user@c.example"
        )

    def test_quotedAfterRoute(self) -> None:
        """
        The mailbox after a route is returned as written.
        """
        self.assertParses('<@a.example:"x y"@[192.0.2.1]>', '"x y"@[192.0.2.1]')

    def test_malformed(self) -> None:
        """
        A route with empty or invalid hops, missing C{@} or C{:}, an address
        literal or no mailbox after it is malformed.
        """
        for path in [
            "<@a.example,user@c.example>",
            "<@a.example user@c.example>",
            "<@:user@c.example>",
            "<@a.example,:user@c.example>",
            "<@a.example,,@b.example:user@c.example>",
            "<@a.example,b.example:user@c.example>",
            "<a.example:user@c.example>",
            "<@a.example::user@c.example>",
            "<@-a.example:user@c.example>",
            "<@a.example.:user@c.example>",
            "<@[192.0.2.1]:user@c.example>",
            "<@a.example:>",
            "<@a.example:user>",
        ]:
            self.assertRefused(path, MALFORMED)

    def test_routeNeedsBrackets(self) -> None:
        """
        A path without brackets cannot have a source route.
        """
        self.assertRefused("@a.example:user@c.example", MALFORMED)

    def test_routePostmaster(self) -> None:
        """
        Postmaster without a domain cannot follow a route.
        """
        self.assertRefused("<@a.example:postmaster>", MALFORMED, allowPostmaster=True)


class SpecialPathTests(PathTestMixin, SynchronousTestCase):
    """
    Tests for the null path, postmaster and paths without brackets in
    L{parsePath}.
    """

    def test_nullAllowed(self) -> None:
        """
        C{<>} is returned as is when the null path is allowed.
        """
        self.assertParses("<>", "<>", allowNull=True)

    def test_nullRefused(self) -> None:
        """
        C{<>} is refused when the null path is not allowed.
        """
        self.assertRefused("<>", NULL_REFUSED)
        self.assertRefused("<>", NULL_REFUSED, allowPostmaster=True)

    def test_nullLookalikes(self) -> None:
        """
        Nothing but exactly C{<>} is the null path.
        """
        for path in ["< >", "<<>>", "<", ">", ""]:
            self.assertRefused(path, MALFORMED, allowNull=True)

    def test_postmaster(self) -> None:
        """
        Postmaster without a domain is returned as written, in any case, when
        allowed.
        """
        for local in ["postmaster", "Postmaster", "POSTMASTER", "PostMaster"]:
            self.assertParses(f"<{local}>", local, allowPostmaster=True)
        self.assertParses("Postmaster", "Postmaster", allowPostmaster=True)

    def test_postmasterNotAllowed(self) -> None:
        """
        Postmaster without a domain needs a domain when not allowed.
        """
        self.assertRefused("<postmaster>", NO_DOMAIN)
        self.assertRefused("<Postmaster>", NO_DOMAIN, allowNull=True)

    def test_postmasterWithDomain(self) -> None:
        """
        Postmaster with a domain is an ordinary mailbox.
        """
        self.assertParses("<Postmaster@example.com>", "Postmaster@example.com")

    def test_notPostmaster(self) -> None:
        """
        Other domain-less local parts, and a quoted postmaster, need a domain.
        """
        self.assertRefused("<user>", NO_DOMAIN, allowPostmaster=True)
        self.assertRefused("<postmasters>", NO_DOMAIN, allowPostmaster=True)
        self.assertRefused('<"postmaster">', NO_DOMAIN, allowPostmaster=True)
        self.assertRefused('<"a@b">', NO_DOMAIN, allowPostmaster=True)
        self.assertRefused("user", NO_DOMAIN)

    def test_domainlessMalformed(self) -> None:
        """
        A domain-less path that is not a valid local part is malformed.
        """
        self.assertRefused("<post master>", MALFORMED, allowPostmaster=True)
        self.assertRefused("<postmaster.>", MALFORMED, allowPostmaster=True)
        self.assertRefused("<user@>", MALFORMED)

    def test_bare(self) -> None:
        """
        A mailbox without brackets is accepted.
        """
        self.assertParses("user@example.com", "user@example.com")
        self.assertParses('"a"@example.com', '"a"@example.com')
        self.assertParses("a@[192.0.2.1]", "a@[192.0.2.1]")

    def test_unbalancedBrackets(self) -> None:
        """
        A path with only one of its brackets is malformed.
        """
        self.assertRefused("<user@example.com", MALFORMED)
        self.assertRefused("user@example.com>", MALFORMED)


class InternationalTests(PathTestMixin, SynchronousTestCase):
    """
    Tests for non-ASCII paths (RFC 6531) in L{parsePath}.
    """

    def test_smtputf8(self) -> None:
        """
        With SMTPUTF8, non-ASCII local parts and U-labels are returned.
        """
        for mailbox in [
            "j\xf6s\xe9@ex\xe4mple.com",
            "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a",
            '"\xfc x"@example.com',
            "\U0001f600@example.com",
            "user@\xfc-x.example",
        ]:
            self.assertParses(f"<{mailbox}>", mailbox, smtputf8=True)

    def test_withoutSMTPUTF8(self) -> None:
        """
        Without SMTPUTF8, any non-ASCII character is refused with 5.6.7.
        """
        for path in [
            "<j\xf6s\xe9@example.com>",
            "<user@ex\xe4mple.com>",
            '<"\xfc"@example.com>',
            "<@ex\xe4mple.com:user@example.com>",
            "<\xfc..@example.com>",
        ]:
            self.assertRefused(path, NON_ASCII)

    def test_nonASCIIControls(self) -> None:
        """
        C1 controls and lone surrogates are malformed even with SMTPUTF8.
        """
        self.assertRefused("<a\x85b@example.com>", MALFORMED, smtputf8=True)
        self.assertRefused("<a@ex\x9bample.com>", MALFORMED, smtputf8=True)
        self.assertRefused("<a\udcffb@example.com>", MALFORMED, smtputf8=True)

    def test_uLabelRules(self) -> None:
        """
        U-labels follow the hyphen and length rules of ASCII labels.
        """
        self.assertRefused("<a@\xfc-.example>", MALFORMED, smtputf8=True)
        self.assertRefused("<a@-\xfc.example>", MALFORMED, smtputf8=True)
        self.assertParses(
            "<a@" + "\xfc" * 63 + ".example>",
            "a@" + "\xfc" * 63 + ".example",
            smtputf8=True,
        )
        self.assertRefused("<a@" + "\xfc" * 64 + ".example>", MALFORMED, smtputf8=True)
        self.assertRefused("<a@\xfc example>", MALFORMED, smtputf8=True)

    def test_postmasterWithSMTPUTF8(self) -> None:
        """
        Domain-less paths are judged the same way with SMTPUTF8.
        """
        self.assertParses(
            "<postmaster>", "postmaster", smtputf8=True, allowPostmaster=True
        )
        self.assertRefused("<\xfcser>", NO_DOMAIN, smtputf8=True)


class LocalPartLimitTests(PathTestMixin, SynchronousTestCase):
    """
    Tests for the C{localPartLimit} of L{parsePath}.
    """

    def test_atLimit(self) -> None:
        """
        A local part exactly at the limit is accepted.
        """
        self.assertParses("<abcde@x.y>", "abcde@x.y", localPartLimit=5)

    def test_overLimit(self) -> None:
        """
        A local part one octet over the limit is refused.
        """
        self.assertRefused("<abcdef@x.y>", TOO_LONG, localPartLimit=5)

    def test_quotesCount(self) -> None:
        """
        Quotes and backslashes count towards the limit.
        """
        self.assertParses('<"abc"@x.y>', '"abc"@x.y', localPartLimit=5)
        self.assertRefused('<"abcd"@x.y>', TOO_LONG, localPartLimit=5)
        self.assertRefused('<"a\\b"@x.y>', TOO_LONG, localPartLimit=4)

    def test_octets(self) -> None:
        """
        Non-ASCII characters count as their UTF-8 octets.
        """
        self.assertParses(
            "<\xfc\xfc@x.y>", "\xfc\xfc@x.y", smtputf8=True, localPartLimit=4
        )
        self.assertRefused("<\xfc\xfc@x.y>", TOO_LONG, smtputf8=True, localPartLimit=3)

    def test_noLimit(self) -> None:
        """
        A limit of zero means no limit.
        """
        local = "a" * 1000
        self.assertParses(f"<{local}@x.y>", f"{local}@x.y", localPartLimit=0)

    def test_routeNotCounted(self) -> None:
        """
        The source route does not count towards the limit.
        """
        self.assertParses("<@a.example:ab@x.y>", "ab@x.y", localPartLimit=2)


class ParseParametersTests(SynchronousTestCase):
    """
    Tests for L{parseParameters}.
    """

    def test_empty(self) -> None:
        """
        No parameters give an empty list.
        """
        self.assertEqual(parseParameters(""), [])
        self.assertEqual(parseParameters("   "), [])

    def test_parameters(self) -> None:
        """
        Keywords with and without values are returned in order.
        """
        self.assertEqual(
            parseParameters("SIZE=100 BODY=8BITMIME SMTPUTF8"),
            [("SIZE", "100"), ("BODY", "8BITMIME"), ("SMTPUTF8", None)],
        )

    def test_case(self) -> None:
        """
        Keywords are upper-cased and values left unchanged.
        """
        self.assertEqual(
            parseParameters("body=8bitMime x-Foo"),
            [("BODY", "8bitMime"), ("X-FOO", None)],
        )

    def test_spaces(self) -> None:
        """
        Several spaces between and around parameters are tolerated.
        """
        self.assertEqual(
            parseParameters("  SIZE=1   BODY=7BIT  "), [("SIZE", "1"), ("BODY", "7BIT")]
        )

    def test_keywordCharacters(self) -> None:
        """
        Keywords may start with a digit and contain hyphens.
        """
        self.assertEqual(
            parseParameters("8BIT-X=yes A-B-"), [("8BIT-X", "yes"), ("A-B-", None)]
        )

    def test_valueCharacters(self) -> None:
        """
        Values may contain any printable ASCII but C{=}, and non-ASCII.
        """
        self.assertEqual(
            parseParameters("ORCPT=rfc822;a+2Bb@example.com ENVID=<x>!~ X=\xfc"),
            [("ORCPT", "rfc822;a+2Bb@example.com"), ("ENVID", "<x>!~"), ("X", "\xfc")],
        )

    def test_syntaxErrors(self) -> None:
        """
        Bad keywords, empty values, C{=} or controls in values, and other
        separators than spaces are syntax errors.
        """
        for text in [
            "KEY=",
            "=VALUE",
            "A=B=C",
            "KEY==1",
            "-X=1",
            "KEY_X=1",
            "K\xdcY=1",
            "A=\x01",
            "A=\x7f",
            "A=\x85",
            "A=1\tB=2",
            "SIZE=1 >",
        ]:
            self.assertRaises(PathSyntaxError, parseParameters, text)

    def test_repeated(self) -> None:
        """
        A keyword given twice is kept twice, in order (as aiosmtpd does;
        C{smtplib} adds its own C{size=} to a C{SIZE=} of its caller).
        """
        self.assertEqual(
            parseParameters("size=2 SIZE=1 SMTPUTF8 SMTPUTF8"),
            [("SIZE", "2"), ("SIZE", "1"), ("SMTPUTF8", None), ("SMTPUTF8", None)],
        )


def _label() -> st.SearchStrategy[str]:
    """
    Generate valid ASCII domain labels.
    """
    middle = st.text(alphabet=LET_DIG + "-", max_size=20)
    letDig = st.sampled_from(LET_DIG)
    return st.one_of(
        letDig, st.builds(lambda a, m, b: a + m + b, letDig, middle, letDig)
    )


_localParts = st.lists(
    st.text(alphabet=ATEXT, min_size=1, max_size=12), min_size=1, max_size=4
).map(".".join)
_domains = st.lists(_label(), min_size=1, max_size=5).map(".".join)
_keywords = st.builds(
    lambda a, b: a + b,
    st.sampled_from(LET_DIG),
    st.text(alphabet=LET_DIG + "-", max_size=10),
)
_values = st.one_of(
    st.none(),
    st.text(
        alphabet=[chr(c) for c in range(0x21, 0x7F) if chr(c) != "="],
        min_size=1,
        max_size=20,
    ),
)
_parameters = st.lists(
    st.tuples(_keywords, _values), max_size=5, unique_by=lambda kv: kv[0].upper()
)


class PropertyTests(SynchronousTestCase):
    """
    Property tests over generated addresses and parameters.
    """

    @given(_localParts, _domains)
    def test_dotAtomMailbox(self, local: str, domain: str) -> None:
        """
        Any Dot-string at any domain is returned without its brackets.
        """
        self.assertEqual(parsePath(f"<{local}@{domain}>"), f"{local}@{domain}")

    @given(
        _localParts,
        _domains,
        _parameters,
        st.sampled_from(["FROM", "from", "From"]),
        st.text(alphabet=" ", max_size=3),
    )
    def test_splitRoundTrip(
        self,
        local: str,
        domain: str,
        parameters: list[tuple[str, str | None]],
        keyword: str,
        padding: str,
    ) -> None:
        """
        splitArgument returns the path and the parameter string as they were
        joined, and parseParameters the parameters.
        """
        path = f"<{local}@{domain}>"
        text = " ".join(k if v is None else f"{k}={v}" for k, v in parameters)
        arg = f"{keyword}:{padding}{path} {text}{padding}"
        self.assertEqual(splitArgument(arg, "FROM"), (path, text))
        self.assertEqual(parseParameters(text), [(k.upper(), v) for k, v in parameters])

    @given(
        st.text(
            alphabet=st.characters(min_codepoint=0xA0, exclude_categories=["Cs"]),
            min_size=1,
            max_size=10,
        ),
        _domains,
    )
    def test_nonASCIILocalPart(self, local: str, domain: str) -> None:
        """
        Non-ASCII local parts are returned with SMTPUTF8 and refused with
        5.6.7 without it.
        """
        path = f"<{local}@{domain}>"
        self.assertEqual(parsePath(path, smtputf8=True), f"{local}@{domain}")
        exc = self.assertRaises(PathRefused, parsePath, path)
        self.assertEqual(exc.reply, NON_ASCII)
