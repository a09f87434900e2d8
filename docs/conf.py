"""
Sphinx configuration of the twisted_smtpd documentation.

Build the narrative pages and the API reference together, from the root of
a checkout, in a virtual environment of their own::

    python3 -m venv /tmp/docs-venv
    /tmp/docs-venv/bin/pip install -r docs/requirements.txt
    /tmp/docs-venv/bin/sphinx-build -b html docs docs/_build/html

The narrative pages are reStructuredText under docs/. The API reference
comes from the package's epytext docstrings: pydoctor builds it (with the
settings of docs/pydoctor.ini) into docs/_build/html/api/, through
pydoctor's Sphinx extension, as Twisted's documentation does; its inventory
lets the narrative pages link to it with :py:class: and friends.

Links from the API reference to the Python and Twisted references need
network access; set TWISTED_SMTPD_DOCS_OFFLINE=1 to build without them.
"""

from __future__ import annotations

import os
import pathlib
import re

_docs = pathlib.Path(__file__).resolve().parent
_root = _docs.parent

project = "twisted_smtpd"
author = "the twisted_smtpd contributors"
copyright = "the twisted_smtpd contributors"

_pyproject = (_root / "pyproject.toml").read_text(encoding="utf-8")
release = re.search(r'^version\s*=\s*"([^"]+)"', _pyproject, re.MULTILINE).group(1)
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.intersphinx",
    "pydoctor.sphinx_ext.build_apidocs",
]

exclude_patterns = ["_build", "requirements.txt"]
root_doc = "index"
highlight_language = "python3"
nitpicky = True

html_theme = "alabaster"
html_title = f"twisted_smtpd {release}"
html_theme_options = {
    "description": "An SMTP and LMTP receiving server for Twisted",
}

# Filled in by pydoctor's extension with the inventory of the API reference.
intersphinx_mapping: dict = {}

_external = [
    "https://docs.python.org/3/objects.inv",
    "https://docs.twisted.org/en/stable/api/objects.inv",
]
if os.environ.get("TWISTED_SMTPD_DOCS_OFFLINE"):
    _external = []

pydoctor_args = [
    f"--config={_docs / 'pydoctor.ini'}",
    "--html-output={outdir}/api",
    f"--project-base-dir={_root}",
    f"--project-version={release}",
    *(f"--intersphinx={url}" for url in _external),
    str(_root / "twisted_smtpd"),
]
pydoctor_url_path = "api/"
