"""
The C{twistd smtpd} plugin.

Kept to one line of work: this module is imported whenever Twisted rebuilds
its plugin cache, so the real code (L{twisted_smtpd.tap}) is only imported
when the command is used. There is deliberately no C{__init__.py} in
C{twisted/} or C{twisted/plugins/} of this project.
"""

from twisted.application.service import ServiceMaker

TwistedSMTPD = ServiceMaker(
    "twisted_smtpd", "twisted_smtpd.tap", "An SMTP/LMTP receiving server", "smtpd"
)
