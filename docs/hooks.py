"""MkDocs hook: the docstrings are written for Sphinx-style readers (``:class:`Term```, a
paragraph ending in ``::`` before a code block); the API pages show them as plain Markdown, so
the role prefix and the doubled colon are dropped from the rendered HTML.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj):(<code>)")
LITERAL_BLOCK = re.compile(r"::</p>(\s*<pre)")


def on_page_content(html: str, **kwargs: Any) -> str:
    html = ROLE.sub(r"\1", html)
    return LITERAL_BLOCK.sub(r":</p>\1", html)
