# -*- test-case-name: tests.test_filelimit -*-
"""
The process's limit on open file descriptors (C{RLIMIT_NOFILE}), which is
the limit on the connections a server can hold: raising it at startup, and
the high-water mark of connections derived from it.

Most systems start a process with a soft limit of 1024 descriptors and a
hard limit far above it; a mail server serving the public wants the hard
one. Above the high-water mark the factory closes the sessions idle
longest to make room for new clients (see L{twisted_smtpd.SMTPFactory});
the descriptors between the mark and the limit stay free for the rest of
the process: the listening sockets, the log, the files and connections
the handler opens, and the connections being closed.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["highWaterMark", "raiseFileLimit", "softFileLimit"]

#: The most descriptors macOS gives a process however high its hard limit
#: (C{OPEN_MAX}); it refuses a soft limit of C{RLIM_INFINITY}.
OPEN_MAX = 10240

#: The least number of descriptors the high-water mark keeps free.
RESERVE_MINIMUM = 64


def _resourceModule(resource: Any) -> Any:
    """
    The C{resource} module given, else the standard one, or C{None} where
    there is none (Windows).
    """
    if resource is not None:
        return resource
    try:
        import resource
    except ImportError:
        return None
    return resource


def softFileLimit(resource: Any = None) -> int | None:
    """
    The soft C{RLIMIT_NOFILE} of this process.

    @param resource: The C{resource} module, or a stand-in for tests.
    @return: The limit, or C{None} for none (C{RLIM_INFINITY}) or where
        the system has no such limit.
    """
    resource = _resourceModule(resource)
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY or soft < 0 else soft


def raiseFileLimit(resource: Any = None) -> tuple[int | None, int | None]:
    """
    Raise the soft C{RLIMIT_NOFILE} to the hard limit, which any process
    may do, as a server does at startup.

    An unlimited hard limit (macOS) is taken as L{OPEN_MAX} on macOS,
    where the system refuses more, and tried as is elsewhere; a limit the
    system refuses is left as it was.

    @param resource: The C{resource} module, or a stand-in for tests.
    @return: The soft limit before and after (C{None} for unlimited or
        unknown).
    """
    resource = _resourceModule(resource)
    if resource is None:
        return None, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinity = resource.RLIM_INFINITY
    before = softFileLimit(resource)
    target = hard
    if hard == infinity and sys.platform == "darwin":
        target = OPEN_MAX
    if soft != infinity and (target == infinity or target > soft):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return before, softFileLimit(resource)


def highWaterMark(limit: int | None) -> int | None:
    """
    The number of connections at which a server with C{limit} file
    descriptors starts closing idle sessions: the limit less an eighth of
    it (at least L{RESERVE_MINIMUM}, at most half), kept for the rest of
    the process.

    @param limit: The soft C{RLIMIT_NOFILE}, or C{None} for none.
    @return: The mark (896 for 1024), or C{None} for no limit.
    """
    if limit is None:
        return None
    reserve = min(max(RESERVE_MINIMUM, limit // 8), limit // 2)
    return max(limit - reserve, 1)
