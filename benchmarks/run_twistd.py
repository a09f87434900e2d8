"""
Run C{twistd} with twisted_smtpd taken from a given source tree::

    python benchmarks/run_twistd.py TREE [twistd arguments...]

e.g. ``run_twistd.py ../old -n --logfile x.log smtpd --handler ...``.  What
runs is what the ``twistd`` console script runs
(L{twisted.scripts.twistd.run}, in this process, so that its CPU time and
memory are this process's), after two things:

 - TREE is put first on C{sys.path} and every other copy of twisted_smtpd
   is taken off it (L{servers.use_tree}), so that both the package and
   twistd's plugin dropin (C{TREE/twisted/plugins/twisted_smtpd_plugin.py})
   come from TREE;
 - an import hook writes to standard error the file that twisted_smtpd, and
   the dropin, are imported from (C{twisted_smtpd imported from PATH}),
   which C{bench.py} checks.  The hook is consulted only by imports of
   modules not yet imported, which stop once the server has started.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

from servers import report_import, use_tree

PLUGIN = "twisted.plugins.twisted_smtpd_plugin"


class ReportOrigin(importlib.abc.MetaPathFinder):
    """
    A finder that finds nothing itself, but, the first time twisted_smtpd
    or its plugin dropin is imported, asks the finders after it and says
    where the module comes from.
    """

    def __init__(self) -> None:
        self.pending = {"twisted_smtpd", PLUGIN}

    def find_spec(self, name, path, target=None):
        if name not in self.pending:
            return None
        self.pending.discard(name)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if name == "twisted_smtpd":
                    report_import(spec.origin)
                else:  # the same form; processes.PLUGIN_REPORT reads it
                    os.write(2, f"{name} imported from {spec.origin}\n".encode())
                return spec
        return None


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tree = sys.argv.pop(1)
    for entry in use_tree(tree):
        os.write(2, f"left out of sys.path: {entry}\n".encode())
    sys.meta_path.insert(0, ReportOrigin())
    from twisted.scripts.twistd import run

    sys.argv[0] = "twistd"
    sys.exit(run())


if __name__ == "__main__":
    main()
