"""
What the log line of one mail transaction costs, on its own: CPU time per
event from the moment twisted_smtpd emits it to the moment it is written to
a log file, through Twisted's global log publisher, with:

- twistd's own observer (C{textFileLogObserver} on a rotating
  L{twisted.python.logfile.LogFile}), which C{twistd smtpd} used before
  it gave twistd its own observer;
- L{twisted_smtpd.log.LogFileObserver} with twistd's text (C{classicText}),
  what C{twistd smtpd} logs through by default;
- the same with JSON lines (C{--log-format json});
- the event dropped by level (C{--log-level warn}).

L{LogFileObserver} writes what waited every tenth of a second;
C{--per-flush} sets how many transactions end in that time (100 at 1,000
messages per second; the 1 KiB benchmarks run at 10,000 to 20,000).  Run
it from the root of the checkout::

    python benchmarks/logline.py [--events 50000] [--per-flush 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.logger import LogPublisher, textFileLogObserver  # noqa: E402
from twisted.python.logfile import LogFile  # noqa: E402

from twisted_smtpd import _translog  # noqa: E402
from twisted_smtpd.log import LEVELS, LogFileObserver, classicText, jsonLine  # noqa: E402


class TurningReactor:
    """
    Just enough of a running reactor for L{LogFileObserver}: C{callLater}
    calls wait until L{turn}, which stands for the passing of the time.
    """

    running = True

    def __init__(self) -> None:
        self.calls: list = []

    def callLater(self, delay: float, f, *args):
        call = _Call(f, args)
        self.calls.append(call)
        return call

    def addSystemEventTrigger(self, *args) -> None:
        pass

    def turn(self) -> None:
        calls, self.calls = self.calls, []
        for call in calls:
            if call.active():
                call.f(*call.args)


class _Call:
    def __init__(self, f, args) -> None:
        self.f, self.args, self.cancelled = f, args, False

    def active(self) -> bool:
        return not self.cancelled

    def cancel(self) -> None:
        self.cancelled = True


class Envelope:
    mail_from = "sender@client.example"
    rcpt_tos = ["rcpt@example.com"]


def measure(name: str, observer, reactor, events: int, perTurn: int) -> float:
    """
    Emit C{events} transaction events to C{observer} through a log
    publisher, the time of a flush passing every C{perTurn} events.

    @return: CPU microseconds per event.
    """
    publisher = LogPublisher(observer)
    saved = _translog.log.observer
    _translog.log.observer = publisher
    try:
        start = time.process_time()
        for i in range(events):
            _translog.logTransaction(
                ("192.0.2.1", 40000 + i % 1000), Envelope, 1024, "250", 0.0
            )
            if i % perTurn == perTurn - 1:
                reactor.turn()
        reactor.turn()
        elapsed = time.process_time() - start
    finally:
        _translog.log.observer = saved
    perEvent = elapsed / events * 1e6
    print(f"{name:<46} {perEvent:8.2f} us/event")
    return perEvent


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--per-flush", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="smtpbench-log-")

    def logFile(name: str) -> LogFile:
        return LogFile.fromFullPath(os.path.join(directory, name))

    reactor = TurningReactor()
    cases = [
        (
            "twistd's own observer (textFileLogObserver)",
            lambda: textFileLogObserver(logFile("twistd.log")),
        ),
        (
            "LogFileObserver, twistd's text (default)",
            lambda: LogFileObserver(
                logFile("text.log"), classicText(), reactor=reactor
            ),
        ),
        (
            "LogFileObserver, JSON lines",
            lambda: LogFileObserver(logFile("json.log"), jsonLine, reactor=reactor),
        ),
        (
            "LogFileObserver, --log-level warn",
            lambda: LogFileObserver(
                logFile("warn.log"),
                classicText(),
                minimumLevel=LEVELS["warn"],
                reactor=reactor,
            ),
        ),
    ]
    results: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(args.rounds):
        for name, make in cases:
            results[name].append(
                measure(name, make(), reactor, args.events, args.per_flush)
            )
    print(
        f"\nmedian of {args.rounds} rounds, {args.events} events, "
        f"{args.per_flush} per flush; files in {directory}"
    )
    for name, values in results.items():
        values.sort()
        print(f"{name:<46} {values[len(values) // 2]:8.2f} us/event")


if __name__ == "__main__":
    main()
