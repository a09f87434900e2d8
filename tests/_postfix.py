"""
A private Postfix instance for integration tests: its own configuration,
queue and data directories under a temporary directory, no listener of its
own, relaying every message to one host and port. Starting it needs root
(Postfix's C{master} does) and the Debian package C{postfix}.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import SkipTest

from tests.test_tls import commandLineTool

#: Seconds a Postfix command may take.
POSTFIX_TIMEOUT = 30.0


def _postconf(*args: str) -> str:
    """
    Run C{postconf} and return what it prints.
    """
    done = subprocess.run(
        [commandLineTool("postconf", "postfix"), *args],
        capture_output=True,
        timeout=POSTFIX_TIMEOUT,
        check=True,
    )
    return done.stdout.decode()


def _masterWithoutListeners() -> str:
    """
    The system's C{master.cf} without its C{inet} services (the SMTP server
    on port 25), so that the private instance listens nowhere.
    """
    path = Path(_postconf("-h", "config_directory").strip()) / "master.cf"
    kept: list[str] = []
    keeping = False
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():
            if keeping:
                kept.append(line)
            continue
        fields = line.split()
        keeping = len(fields) > 1 and fields[1] != "inet"
        if keeping:
            kept.append(line)
    return "\n".join(kept) + "\n"


class PostfixRelay:
    """
    A private Postfix that relays all mail to C{127.0.0.1:port}.

    @ivar directory: Where its configuration, queue, data and log are.
    """

    def __init__(self, port: int) -> None:
        """
        Write the configuration; skip the test when Postfix is missing or
        this process is not root.
        """
        self.postfix = commandLineTool("postfix")
        self.sendmailTool = commandLineTool("sendmail", "postfix")
        if os.geteuid() != 0:
            raise SkipTest("a private Postfix instance needs root")
        self.directory = Path(tempfile.mkdtemp(prefix="twisted-smtpd-postfix-"))
        # Postfix's daemons, which run as its own user, must reach it.
        self.directory.chmod(0o755)
        conf = self.config = self.directory / "conf"
        for name in ("conf", "queue", "data"):
            (self.directory / name).mkdir()
        shutil.chown(self.directory / "data", _postconf("-h", "mail_owner").strip())
        (conf / "master.cf").write_text(_masterWithoutListeners())
        (conf / "main.cf").write_text(
            "\n".join(
                [
                    "compatibility_level = 3.6",
                    f"queue_directory = {self.directory / 'queue'}",
                    f"data_directory = {self.directory / 'data'}",
                    "myhostname = relay.example",
                    "myorigin = relay.example",
                    "mydestination =",
                    "inet_interfaces = loopback-only",
                    "inet_protocols = ipv4",
                    f"relayhost = [127.0.0.1]:{port}",
                    "smtp_tls_security_level = none",
                    "alias_maps =",
                    "alias_database =",
                    f"maillog_file_prefixes = {self.directory}",
                    f"maillog_file = {self.directory / 'maillog'}",
                    "",
                ]
            )
        )

    def log(self) -> str:
        """
        The end of the instance's log, to explain a failure.
        """
        try:
            return (self.directory / "maillog").read_text()[-3000:]
        except OSError:
            return "(no log)"

    def start(self) -> None:
        """
        Start the instance; skip the test, with its log, if it cannot.
        """
        done = subprocess.run(
            [self.postfix, "-c", str(self.config), "start"],
            capture_output=True,
            timeout=POSTFIX_TIMEOUT,
            check=False,
        )
        if done.returncode:
            self.stop()
            raise SkipTest(f"Postfix did not start: {self.log()}")

    def stop(self) -> None:
        """
        Stop the instance and remove its directory.
        """
        subprocess.run(
            [self.postfix, "-c", str(self.config), "stop"],
            capture_output=True,
            timeout=POSTFIX_TIMEOUT,
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)

    def sendmail(self, sender: str, recipient: str, message: bytes) -> None:
        """
        Submit C{message} (blocking: call it in a thread).

        @raise AssertionError: If Postfix's C{sendmail} refuses it.
        """
        done = subprocess.run(
            [self.sendmailTool, "-C", str(self.config), "-f", sender, recipient],
            input=message,
            capture_output=True,
            timeout=POSTFIX_TIMEOUT,
            check=False,
        )
        if done.returncode:
            raise AssertionError(f"sendmail failed: {done.stderr!r}")
