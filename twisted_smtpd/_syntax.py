# -*- test-case-name: tests.test_syntax -*-
"""
The C{@syntax} decorator that gives commands their HELP text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def syntax(
    text: str, extended: str | None = None, when: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Give an C{smtp_<VERB>} method its HELP text, as aiosmtpd's C{@syntax}.

    @param text: The syntax shown by C{HELP <VERB>}; the verb is listed by
        C{HELP} only when it has one.
    @param extended: Appended to C{text} once the client sent EHLO.
    @param when: The name of a server attribute that must be true for the
        verb to be listed (e.g. C{"tls_context"} for STARTTLS).
    """

    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        method.__smtp_syntax__ = text  # type: ignore[attr-defined]
        method.__smtp_syntax_extended__ = extended  # type: ignore[attr-defined]
        method.__smtp_syntax_when__ = when  # type: ignore[attr-defined]
        return method

    return decorator
