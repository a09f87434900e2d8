"""
The servers compared by ``bench.py``, one per process.

Run as::

    python benchmarks/servers.py NAME [--size N] [--tree DIR]

where NAME is ``twisted_smtpd``, ``aiosmtpd``, ``twistedmail`` or ``bare``.
The server listens on an ephemeral port of 127.0.0.1, prints that port number
alone on a line of its standard output, and then serves until it is killed.
Every server accepts every message and throws it away (a "sink"), so that what
is measured is the cost of the SMTP protocol machinery itself.

``--size N`` sets the largest message the server accepts, in bytes (for
twisted_smtpd and aiosmtpd; twisted.mail and the bare responder have no
limit).  Without it each library keeps its own default.

``--tree DIR`` (twisted_smtpd only) imports twisted_smtpd from the source
tree DIR, by default the checkout this script is in; see L{use_tree}.  The
file it was imported from is written to standard error as
``twisted_smtpd imported from PATH``, which C{bench.py} checks.

Exit status 3 means the server's library could not be imported.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys

SERVERS = ("twisted_smtpd", "aiosmtpd", "twistedmail", "bare")
HOSTNAME = "bench.local"
BACKLOG = 1024
WANTED_NOFILE = 30000


def raise_nofile(wanted: int = WANTED_NOFILE) -> int:
    """
    Raise this process's limit on open files as far as allowed, up to
    C{wanted}, and return the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    for new in ((wanted, max(hard, wanted)), (min(wanted, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, new)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


#: The start of the line that says where twisted_smtpd was imported from.
IMPORT_REPORT = "twisted_smtpd imported from "

#: The checkout this script lives in.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def use_tree(tree: str) -> list[str]:
    """
    Make C{import twisted_smtpd} (and Twisted's plugin search) find the
    source tree C{tree} and no other copy: put C{tree} first on C{sys.path}
    and take off it every other entry holding a C{twisted_smtpd} package,
    such as the checkout of an editable install, which a C{.pth} file adds
    and whose C{twisted/plugins} dropin Twisted would otherwise also read.

    @return: The entries taken off.
    """
    tree = os.path.realpath(tree)
    kept, dropped = [], []
    for entry in sys.path:
        where = os.path.realpath(entry or os.getcwd())
        if where == tree:
            continue
        if os.path.exists(os.path.join(where, "twisted_smtpd", "__init__.py")):
            dropped.append(entry)
        else:
            kept.append(entry)
    sys.path[:] = [tree] + kept
    return dropped


def report_import(path: str) -> None:
    """
    Say on standard error (file descriptor 2, which twistd does not
    redirect) where twisted_smtpd was imported from.
    """
    os.write(2, f"{IMPORT_REPORT}{path}\n".encode())


class SinkHandler:
    """
    An aiosmtpd-style handler that accepts every message and keeps nothing.
    """

    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def announce(port: int) -> None:
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()


def quiet_twisted_logging() -> None:
    """
    Send Twisted's warnings and errors to stderr and drop the rest, so that
    the log buffer of an unstarted log system does not grow during a run.
    """
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    observer = FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def run_twisted_smtpd(size: int | None) -> None:
    try:
        import twisted_smtpd
        from twisted_smtpd import SMTPFactory
    except Exception as e:  # ImportError, or a package caught half-written
        sys.stderr.write(f"twisted_smtpd is not importable: {e!r}\n")
        sys.exit(3)
    from twisted.internet import reactor

    report_import(twisted_smtpd.__file__)

    quiet_twisted_logging()
    kwargs = {"hostname": HOSTNAME}
    if size is not None:
        kwargs["data_size_limit"] = size
    factory = SMTPFactory(SinkHandler(), **kwargs)
    port = reactor.listenTCP(0, factory, backlog=BACKLOG, interface="127.0.0.1")
    sys.stderr.write(f"twisted_smtpd on {type(reactor).__name__}\n")
    reactor.callWhenRunning(announce, port.getHost().port)
    reactor.run()


def run_aiosmtpd(size: int | None) -> None:
    import asyncio

    try:
        from aiosmtpd.smtp import SMTP
    except Exception as e:
        sys.stderr.write(f"aiosmtpd is not importable: {e!r}\n")
        sys.exit(3)

    handler = SinkHandler()
    kwargs = {"hostname": HOSTNAME}
    if size is not None:
        kwargs["data_size_limit"] = size

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, **kwargs), "127.0.0.1", 0, backlog=BACKLOG
        )
        sys.stderr.write(f"aiosmtpd on {type(loop).__name__}\n")
        announce(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def run_twistedmail(size: int | None) -> None:
    try:
        from twisted.internet import defer, protocol, reactor
        from twisted.mail import smtp
        from zope.interface import implementer
    except Exception as e:
        sys.stderr.write(f"twisted.mail is not importable: {e!r}\n")
        sys.exit(3)

    @implementer(smtp.IMessage)
    class SinkMessage:
        def lineReceived(self, line):
            pass

        def eomReceived(self):
            return defer.succeed(None)

        def connectionLost(self):
            pass

    @implementer(smtp.IMessageDelivery)
    class SinkDelivery:
        def receivedHeader(self, helo, origin, recipients):
            return None

        def validateFrom(self, helo, origin):
            return origin

        def validateTo(self, user):
            return SinkMessage

    class ESMTPFactory(protocol.ServerFactory):
        def __init__(self):
            self.delivery = SinkDelivery()

        def buildProtocol(self, addr):
            p = smtp.ESMTP()
            p.factory = self
            p.delivery = self.delivery
            p.host = HOSTNAME.encode("ascii")
            return p

    quiet_twisted_logging()
    port = reactor.listenTCP(0, ESMTPFactory(), backlog=BACKLOG, interface="127.0.0.1")
    sys.stderr.write(f"twistedmail on {type(reactor).__name__}\n")
    reactor.callWhenRunning(announce, port.getHost().port)
    reactor.run()


def run_bare(size: int | None) -> None:
    """
    The least a Twisted SMTP receiver can do: a L{LineOnlyReceiver} that
    answers every command with a canned reply and finds the end of DATA,
    nothing else: every line, of the commands and of the message alike,
    goes through C{lineReceived}, as in any line-based Twisted server.  No
    parsing, no dot-unstuffing, no state beyond "in a message or not", no
    handler, no log line.
    """
    from twisted.internet import protocol, reactor
    from twisted.protocols.basic import LineOnlyReceiver

    replies = {
        b"EHLO": b"250-" + HOSTNAME.encode() + b"\r\n250-PIPELINING\r\n"
        b"250 8BITMIME\r\n",
        b"HELO": b"250 " + HOSTNAME.encode() + b"\r\n",
        b"MAIL": b"250 OK\r\n",
        b"RCPT": b"250 OK\r\n",
        b"RSET": b"250 OK\r\n",
        b"NOOP": b"250 OK\r\n",
        b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
        b"QUIT": b"221 Bye\r\n",
    }
    greeting = b"220 " + HOSTNAME.encode() + b" ESMTP bare\r\n"
    unknown = b"500 Error: command not recognized\r\n"

    class BareSMTP(LineOnlyReceiver):
        inData = False

        def connectionMade(self):
            self.transport.write(greeting)

        def lineReceived(self, line):
            if self.inData:
                if line == b".":
                    self.inData = False
                    self.transport.write(b"250 OK\r\n")
                return
            verb = line[:4].upper()
            self.transport.write(replies.get(verb, unknown))
            if verb == b"DATA":
                self.inData = True
            elif verb == b"QUIT":
                self.transport.loseConnection()

    factory = protocol.ServerFactory.forProtocol(BareSMTP)
    quiet_twisted_logging()
    port = reactor.listenTCP(0, factory, backlog=BACKLOG, interface="127.0.0.1")
    sys.stderr.write(f"bare on {type(reactor).__name__}\n")
    reactor.callWhenRunning(announce, port.getHost().port)
    reactor.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=SERVERS)
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="largest message accepted, in bytes (default: the library's own)",
    )
    parser.add_argument(
        "--tree",
        default=CHECKOUT,
        help="the source tree to import twisted_smtpd from "
        "(default: the checkout this script is in)",
    )
    args = parser.parse_args(argv)
    nofile = raise_nofile()
    sys.stderr.write(f"{args.name}: pid {os.getpid()}, RLIMIT_NOFILE {nofile}\n")
    if args.name == "twisted_smtpd":
        for entry in use_tree(args.tree):
            sys.stderr.write(f"left out of sys.path: {entry}\n")
    {
        "twisted_smtpd": run_twisted_smtpd,
        "aiosmtpd": run_aiosmtpd,
        "twistedmail": run_twistedmail,
        "bare": run_bare,
    }[args.name](args.size)


if __name__ == "__main__":
    main()
