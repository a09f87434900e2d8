"""
Tests for L{twisted_smtpd._protocol}: the SMTP server protocol, driven in
memory through L{twisted_smtpd.testing.SMTPTester} or directly with a
L{StringTransport} and a L{Clock}. No sockets, no real time.
"""

from __future__ import annotations
