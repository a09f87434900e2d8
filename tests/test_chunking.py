# -*- test-case-name: tests.test_chunking -*-
"""
Tests for L{twisted_smtpd._chunking}: CHUNKING, BDAT and BINARYMIME.
"""
