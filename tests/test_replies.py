"""
Tests for L{twisted_smtpd._replies}: the encoding of replies, the enhanced
status codes added to them (RFC 2034, RFC 3463) and the reply codes the
transaction log records. Pure functions: no server at all.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_smtpd._replies import codeOf, encode, withEnhancedCodes

#: The enhanced code each reply code gets when it has none, as RFC 3463
#: classes them for the replies this server sends.
ENHANCED = {
    "214": "2.0.0",
    "221": "2.0.0",
    "250": "2.0.0",
    "252": "2.5.0",
    "421": "4.3.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.3.1",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}


class EncodeTests(SynchronousTestCase):
    """
    L{encode}: a reply as the bytes that go on the wire.
    """

    def test_ascii(self) -> None:
        """
        An ASCII reply is encoded as it is, with or without UTF-8.
        """
        self.assertEqual(encode("250 OK", False), b"250 OK")
        self.assertEqual(encode("250 OK", True), b"250 OK")

    def test_nonAsciiReplaced(self) -> None:
        """
        Without SMTPUTF8, each character outside ASCII becomes one C{?}.
        """
        self.assertEqual(encode("550 Nö ünicode ✉", False), b"550 N? ?nicode ?")

    def test_utf8(self) -> None:
        """
        With SMTPUTF8, the reply is UTF-8.
        """
        self.assertEqual(encode("550 Nö ✉", True), "550 Nö ✉".encode())

    def test_bytesUnchanged(self) -> None:
        """
        Bytes go out as they are, even bytes that are not ASCII or UTF-8.
        """
        self.assertEqual(encode(b"250 \xff\xfe", False), b"250 \xff\xfe")
        self.assertEqual(encode(b"250 \xff\xfe", True), b"250 \xff\xfe")

    def test_typeError(self) -> None:
        """
        Anything but C{str} or C{bytes} raises L{TypeError} naming it.
        """
        for status in (250, None, ["250 OK"], bytearray(b"250 OK")):
            with self.assertRaises(TypeError) as caught:
                encode(status, False)  # type: ignore[arg-type]
            self.assertIn(repr(status), str(caught.exception))


class WithEnhancedCodesTests(SynchronousTestCase):
    """
    L{withEnhancedCodes}: an enhanced status code for every line of a 2yz,
    4yz or 5yz reply that lacks one.
    """

    def test_knownCodes(self) -> None:
        """
        Each reply code the server sends gets its own enhanced code, after
        the code and before the text.
        """
        for code, enhanced in ENHANCED.items():
            self.assertEqual(
                withEnhancedCodes(f"{code} Some text".encode()),
                f"{code} {enhanced} Some text".encode(),
            )

    def test_otherCodes(self) -> None:
        """
        Any other 2yz, 4yz or 5yz code gets the generic code of its class.
        """
        self.assertEqual(withEnhancedCodes(b"235 Fine"), b"235 2.0.0 Fine")
        self.assertEqual(withEnhancedCodes(b"432 Later"), b"432 4.0.0 Later")
        self.assertEqual(withEnhancedCodes(b"535 No"), b"535 5.0.0 No")

    def test_existingKept(self) -> None:
        """
        A reply that carries an enhanced code keeps it, even one of another
        detail than the default.
        """
        for status in (
            b"250 2.1.5 Recipient ok",
            b"550 5.1.1 No such user",
            b"451 4.7.1 Greylisted",
            b"250 2.0.0",
            b"550 5.7.1\r",
        ):
            self.assertEqual(withEnhancedCodes(status), status)

    def test_numberIsNotACode(self) -> None:
        """
        Text that begins with digits and dots but is no enhanced code (too
        many digits, no space after it) still gets a code.
        """
        self.assertEqual(withEnhancedCodes(b"250 2.0.1234 x"), b"250 2.0.0 2.0.1234 x")
        self.assertEqual(withEnhancedCodes(b"250 2.0.0x"), b"250 2.0.0 2.0.0x")

    def test_multiline(self) -> None:
        """
        Each line of a multi-line reply gets its code, with its own
        separator; a line that has one keeps it.
        """
        self.assertEqual(
            withEnhancedCodes(b"250-first\r\n250-2.1.0 second\r\n250 last"),
            b"250-2.0.0 first\r\n250-2.1.0 second\r\n250 2.0.0 last",
        )

    def test_otherClassesUntouched(self) -> None:
        """
        1yz and 3yz replies (the 354 to DATA, the 334 of AUTH) never get a
        code (RFC 2034 section 3).
        """
        for status in (
            b"354 End data with <CR><LF>.<CR><LF>",
            b"334 VXNlcg==",
            b"199 x",
        ):
            self.assertEqual(withEnhancedCodes(status), status)

    def test_notAReply(self) -> None:
        """
        Bytes that do not begin with a reply code are left alone.
        """
        for status in (b"", b"2x0 OK", b"OK 250", b"x250 OK"):
            self.assertEqual(withEnhancedCodes(status), status)

    def test_shortCodeNotAReply(self) -> None:
        """
        One or two digits are no reply code: they are left alone too.
        """
        for status in (b"2", b"25"):
            self.assertEqual(withEnhancedCodes(status), status)


class CodeOfTests(SynchronousTestCase):
    """
    L{codeOf}: the reply code(s) the transaction log records.
    """

    def test_str(self) -> None:
        """
        The code of a C{str} reply is its first three characters.
        """
        self.assertEqual(codeOf("554 5.7.1 No"), "554")

    def test_bytes(self) -> None:
        """
        The code of a C{bytes} reply is decoded, undecodable bytes
        replaced.
        """
        self.assertEqual(codeOf(b"250 OK"), "250")
        self.assertEqual(codeOf(b"\xff50 OK"), "\ufffd50")

    def test_list(self) -> None:
        """
        A list or tuple (LMTP's one status per recipient) gives each code,
        joined by commas, C{None} standing for C{250}.
        """
        self.assertEqual(codeOf(["250 OK", None, b"550 No"]), "250,250,550")
        self.assertEqual(codeOf(("451 Later",)), "451")
        self.assertEqual(codeOf([]), "")

    def test_other(self) -> None:
        """
        Anything else gives C{?}.
        """
        for status in (None, 250, object()):
            self.assertEqual(codeOf(status), "?")


class EnhancedCodeTextTests(SynchronousTestCase):
    """
    Where the enhanced code goes in a reply with no text.
    """

    def test_codeAlone(self) -> None:
        """
        A reply of a code alone gets the enhanced code and no trailing space.
        """
        self.assertEqual(withEnhancedCodes(b"250"), b"250 2.0.0")
        self.assertEqual(withEnhancedCodes(b"250 "), b"250 2.0.0")

    def test_notACodeSeparator(self) -> None:
        """
        Three digits followed by anything but a space or a hyphen are no
        reply code.
        """
        self.assertEqual(withEnhancedCodes(b"2500 OK"), b"2500 OK")
