"""
Tests of the source tree itself: every C{test-case-name} header of a module
of L{twisted_smtpd} names test modules that exist.
"""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import twisted_smtpd

_HEADER = re.compile(r"#\s*-\*-\s*test-case-name:\s*(\S+)\s*-\*-")


def testCaseNames() -> dict[str, list[str]]:
    """
    The test modules each module of the package names, by file name.
    """
    names = {}
    for path in sorted(Path(twisted_smtpd.__file__).parent.glob("*.py")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        match = _HEADER.match(first[0]) if first else None
        names[path.name] = match.group(1).split(",") if match else []
    return names


class TestCaseNameTests(SynchronousTestCase):
    """
    The C{test-case-name} headers, which C{trial --testmodule} and editors
    follow to a module's tests.
    """

    def test_everyModuleHasOne(self) -> None:
        """
        Every module but the package's C{__init__} names its tests.
        """
        missing = [n for n, tests in testCaseNames().items() if not tests]
        self.assertEqual(missing, ["__init__.py"])

    def test_namedModulesExist(self) -> None:
        """
        Every test module a header names exists.
        """
        missing = [
            f"{name}: {test}"
            for name, tests in testCaseNames().items()
            for test in tests
            if find_spec(test) is None
        ]
        self.assertEqual(missing, [])
