# -*- test-case-name: tests.test_verbs -*-
"""
How command groups declare what they add to the server, as data: their
verbs, their EHLO keywords and their MAIL and RCPT parameters; and how a
server class is assembled from its groups.

A command group is an object (one per server class, shared by all its
connections) whose methods named by L{verb} implement commands. Each
method takes the connection (a L{ServerCore
<twisted_smtpd._interfaces.ServerCore>}) and the command's argument. The
server class gets an C{smtp_<VERB>} method for each, so that a subclass
overrides a command, or extends it with C{super().smtp_<VERB>(arg)}, as
with aiosmtpd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from attrs import frozen
from twisted.internet.defer import Deferred

from twisted_smtpd._hooks import DONE


def verb(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Mark a method of a command group as the command C{name}.

    Give it HELP text with L{twisted_smtpd.syntax} as well.
    """

    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        method.__smtp_verb__ = name  # type: ignore[attr-defined]
        return method

    return decorator


def carries(
    refused: Callable[[Any, str | None, str], None],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Mark a command of a group as carrying more than its line (BDAT's
    chunk). When the policy refuses the command before it runs (a C{530}
    before STARTTLS, say), C{refused(server, arg, reply)} is called instead
    of sending C{reply}: it sends it and reads past what the command
    carries, so that none of it is taken for commands.
    """

    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        method.__smtp_refused__ = refused  # type: ignore[attr-defined]
        return method

    return decorator


@frozen
class Parameter:
    """
    An ESMTP parameter of MAIL or RCPT (RFC 5321 section 4.1.1.11) that a
    command group understands.

    @ivar name: The keyword, in upper case.
    @ivar check: Called with the connection and the value (C{None} when the
        parameter has none); raises L{PathSyntaxError
        <twisted_smtpd._address.PathSyntaxError>} or L{PathRefused
        <twisted_smtpd._address.PathRefused>} to refuse it.
    @ivar offered: Called with the connection: whether the parameter is
        understood now (C{None}: always). One that is not gets C{555}, as
        an unknown one.
    @ivar stored: Called with the connection, the keyword and the value:
        the parameter as C{mail_options} or C{rcpt_options} keep it.
    @ivar room: Called with the connection: how many octets the parameter
        may add now to the command line beyond C{command_size_limit} (RFC
        5321 section 4.5.3.1.4 leaves that to each extension).
    @ivar once: Whether the parameter may be given at most once (as RFC
        3461 says of its own); a second one gets C{501}.
    """

    name: str
    check: Callable[[Any, str | None], None]
    offered: Callable[[Any], bool] | None = None
    stored: Callable[[Any, str, str | None], str] = lambda server, key, value: (
        key if value is None else f"{key}={value.upper()}"
    )
    room: Callable[[Any], int] = lambda server: 0
    once: bool = False


class CommandGroup:
    """
    The base of command groups: no keyword, no parameter, no verb.
    """

    #: The MAIL parameters the group understands.
    mailParameters: tuple[Parameter, ...] = ()

    #: The RCPT parameters the group understands.
    rcptParameters: tuple[Parameter, ...] = ()

    def keywords(self, server: Any) -> list[str]:
        """
        The EHLO keywords the group adds now, with their parameters (e.g.
        C{"SIZE 1000"}).

        They must follow from the server's options (C{server.config}), its
        class and whether TLS is active (C{server.tlsActive}) alone: the
        server works them out once for each combination.
        """
        return []

    def verbs(self) -> dict[str, Callable[..., Any]]:
        """
        The group's commands by verb: its methods marked by L{verb}.
        """
        found = {}
        for name in dir(type(self)):
            method = getattr(self, name, None)
            verbName = getattr(method, "__smtp_verb__", None)
            if verbName is not None:
                found[verbName] = method
        return found


def _command(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    """
    Make the C{smtp_<VERB>} method of a server class that runs a group's
    command.

    It returns an awaitable, so that an override written for aiosmtpd can
    C{await super().smtp_<VERB>(arg)}: L{DONE} when the command is done,
    else a L{Deferred} (an asyncio future when hooks run as asyncio tasks).
    """

    def command(self: Any, arg: str | None) -> Any:
        result = method(self, arg)
        if result is None:
            return DONE
        if isinstance(result, Deferred):
            return self.awaitable(result)
        return result

    # The command itself, which the command-line mode calls directly.
    command.__smtp_command__ = method  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = "smtp_" + name
    command.__doc__ = method.__doc__
    for attribute in ("__smtp_syntax__", "__smtp_syntax_extended__"):
        setattr(command, attribute, getattr(method, attribute, None))
    command.__smtp_syntax_when__ = getattr(  # type: ignore[attr-defined]
        method, "__smtp_syntax_when__", None
    )
    return command


def installCommands(cls: type, groups: Iterable[CommandGroup]) -> None:
    """
    Give a server class the C{smtp_<VERB>} methods of its command groups,
    and the tables of their MAIL and RCPT parameters.

    A method the class body defines itself is kept. A verb that a base class
    has and none of the groups has any more (LMTP's C{HELO} and C{EHLO}) is
    set to C{None}: it is then an unknown command.
    """
    groups = tuple(groups)
    verbs: dict[str, Callable[..., Any]] = {}
    for group in groups:
        verbs.update(group.verbs())
    for base in cls.__mro__[1:]:
        for name in getattr(base, "_groupVerbs", ()):
            if name not in verbs and "smtp_" + name not in vars(cls):
                setattr(cls, "smtp_" + name, None)
    for name, method in verbs.items():
        if "smtp_" + name not in vars(cls):
            setattr(cls, "smtp_" + name, _command(method, name))
    cls._groupVerbs = frozenset(verbs)
    cls.mailParameters = {p.name: p for g in groups for p in g.mailParameters}
    cls.rcptParameters = {p.name: p for g in groups for p in g.rcptParameters}
