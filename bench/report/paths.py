"""Paths as report.md shows them: relative to the run directory or to home, never as one machine's layout.

A committed report is read on other machines, where the measuring one's /tmp/run or /root/.cache mean nothing.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

# a home directory of the measuring machine, which need not be this one's
HOME = re.compile(r"^(?:/root|/home/[^/]+|/Users/[^/]+)(?=/|$)")
# an absolute path in free text: a slash that does not continue a word, a relative path, a URL or an HTML
# closing tag, then path characters
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~<])/[\w.+-]+(?:/[\w.+-]+)*/?")


def shown_out(out: Path) -> str:
    """The run directory as report.md names it: as given when relative, else "." (where report.md is)."""
    out = Path(out)
    return str(out) if not out.is_absolute() and ".." not in out.parts else "."


def path_roots(config: dict, out: Path) -> dict[str, str]:
    """Absolute directories -> how report.md shows them: the run directory (as recorded and here), home."""
    shown = shown_out(out)
    roots = {str(Path(out).resolve()): shown, str(Path.home()): "~"}
    recorded = str(config.get("out") or "")
    if recorded.startswith("/"):
        roots[recorded.rstrip("/")] = shown
    return {root: name for root, name in roots.items() if len(PurePosixPath(root).parts) > 1}


def _shown(path: str, roots: dict[str, str]) -> str:
    for root in sorted(roots, key=len, reverse=True):
        if path.rstrip("/") == root or path.startswith(root + "/"):
            rest = path[len(root):].strip("/")
            return f"{roots[root]}/{rest}" if rest else roots[root]
    home = HOME.match(path)
    if home:
        return "~" + path[home.end():]
    return PurePosixPath(path).name or path


def relative_paths(text: str, roots: dict[str, str]) -> str:
    """`text` with each absolute path shown under the deepest root holding it, or home as "~", or else by its
    file name alone."""
    return ABSOLUTE_PATH.sub(lambda match: _shown(match.group(0), roots), text)
