"""
The servers compared by ``bench.py``, one per process.

Run as::

    python benchmarks/servers.py NAME [--size N]

where NAME is ``twisted_smtpd``, ``aiosmtpd`` or ``twistedmail``.  The server
listens on an ephemeral port of 127.0.0.1, prints that port number alone on
a line of its standard output, and then serves until it is killed.  Every
server accepts every message and throws it away (a "sink"), so that what is
measured is the cost of the SMTP protocol machinery itself.

``--size N`` sets the largest message the server accepts, in bytes (for
twisted_smtpd and aiosmtpd; twisted.mail has no limit).  Without it each
library keeps its own default.

Exit status 3 means the server's library could not be imported.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys

SERVERS = ("twisted_smtpd", "aiosmtpd", "twistedmail")
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
        from twisted_smtpd import SMTPFactory
    except Exception as e:  # ImportError, or a package caught half-written
        sys.stderr.write(f"twisted_smtpd is not importable: {e!r}\n")
        sys.exit(3)
    from twisted.internet import reactor

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=SERVERS)
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="largest message accepted, in bytes (default: the library's own)",
    )
    args = parser.parse_args(argv)
    # Make the checkout importable however this script is started.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(here))
    nofile = raise_nofile()
    sys.stderr.write(f"{args.name}: pid {os.getpid()}, RLIMIT_NOFILE {nofile}\n")
    {
        "twisted_smtpd": run_twisted_smtpd,
        "aiosmtpd": run_aiosmtpd,
        "twistedmail": run_twistedmail,
    }[args.name](args.size)


if __name__ == "__main__":
    main()
