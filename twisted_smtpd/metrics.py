# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics of a server (optional: C{pip install
'twisted_smtpd[metrics]'}).

Serve them with C{makeService(handler, endpoints, metrics="tcp:9101:
interface=127.0.0.1")} or C{twistd smtpd --metrics 9101}; a handler that
hands messages off (to a broker, say) reports each hand-off with
L{observePublish}, and whether it can hand off at all with
L{observeHandoff}; both do nothing when no server serves metrics.
"""

from twisted_smtpd._metrics import (
    Metrics,
    observeHandoff,
    observePublish,
    serveMetrics,
)

__all__ = ["Metrics", "observeHandoff", "observePublish", "serveMetrics"]
