# -*- test-case-name: tests.test_transaction,tests.test_dsn -*-
"""
The argument of MAIL and RCPT: the path and the ESMTP parameters (RFC 5321
section 4.1.2), checked against the parameters the server's command groups
declare (see L{twisted_smtpd._verbs.Parameter}) and those the handler
accepts by name.
"""

from __future__ import annotations

from typing import Any

from twisted_smtpd._address import (
    PathRefused,
    PathSyntaxError,
    parseParameters,
    parsePath,
    splitArgument,
)
from twisted_smtpd._interfaces import ServerCore
from twisted_smtpd._verbs import Parameter


def checkedParameters(
    server: ServerCore,
    text: str,
    table: dict[str, Parameter],
    unknown: str,
    extra: dict[str, Parameter] | None = None,
) -> list[tuple[str, str | None, Parameter]]:
    """
    Parse and check the parameters of MAIL or RCPT.

    @param text: What follows the path.
    @param table: The parameters understood, by keyword.
    @param unknown: The reply to a parameter that is not understood.
    @param extra: The parameters the handler accepts by name, looked up
        after C{table}.
    @return: The parameters as C{(KEYWORD, value, parameter)}, in order.
    @raise PathSyntaxError: For malformed parameters, or any parameter
        without EHLO.
    @raise PathRefused: For a parameter refused, or given twice when it
        may be given once.
    """
    options = parseParameters(text)
    if options and not server.session.extended_smtp:
        raise PathSyntaxError(text)
    checked = []
    for key, value in options:
        parameter = table.get(key)
        if parameter is None or (
            parameter.offered is not None and not parameter.offered(server)
        ):
            parameter = extra.get(key) if extra else None
            if parameter is None:
                raise PathRefused(unknown)
        if parameter.once and any(key == seen for seen, _, _ in checked):
            raise PathRefused(f"501 5.5.4 Error: {key} parameter given twice")
        parameter.check(server, value)
        checked.append((key, value, parameter))
    return checked


def parsedArgument(
    server: ServerCore,
    arg: str | None,
    verbName: str,
    table: dict[str, Parameter],
    smtputf8: bool | None = None,
) -> tuple[str, list[Any], bool] | None:
    """
    Parse and check the argument of MAIL or RCPT: the path and the
    parameters; reply and return C{None} if it is refused.

    @param table: The parameters understood, by keyword.
    @param smtputf8: Whether the path may be UTF-8 (RFC 6531); C{None}
        for MAIL, whose own SMTPUTF8 parameter says.
    @return: The address, the parameters (as L{checkedParameters} gives
        them), and whether UTF-8 was allowed.
    """
    keyword = "FROM" if verbName == "MAIL" else "TO"
    try:
        path, params = splitArgument(arg or "", keyword)
        options = (
            checkedParameters(
                server,
                params,
                table,
                f"555 {verbName} {keyword} parameters not recognized or not"
                " implemented",
                server.config.extraMailParameters
                if verbName == "MAIL"
                else server.config.extraRcptParameters,
            )
            if params
            else []
        )
        if smtputf8 is None:
            smtputf8 = bool(options) and any(key == "SMTPUTF8" for key, _, _ in options)
        address = parsePath(
            path,
            smtputf8=smtputf8,
            localPartLimit=server.config.local_part_limit,
            # The null reverse-path, and RCPT's domain-less postmaster.
            allowNull=verbName == "MAIL",
            allowPostmaster=verbName == "RCPT",
        )
    except PathSyntaxError:
        _refuseSyntax(server, verbName)
        return None
    except PathRefused as e:
        server.reply(e.reply)
        return None
    return address, options, smtputf8


def storedParameters(server: ServerCore, options: list[Any]) -> list[str]:
    """
    The parameters (as L{checkedParameters} gives them) as C{mail_options}
    or C{rcpt_options} keep them.
    """
    return [p.stored(server, key, value) for key, value, p in options]


def _refuseSyntax(server: ServerCore, verbName: str) -> None:
    text = (
        "501 Syntax: MAIL FROM: <address>"
        if verbName == "MAIL"
        else "501 Syntax: RCPT TO: <address>"
    )
    if server.session.extended_smtp:
        text += " [SP <mail-parameters>]"
    server.reply(text)
