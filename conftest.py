"""Processes a test starts with ``sys.executable -m <module>`` import what the test itself imports.

Pants runs each test from a PEX that finds the project's source roots through ``PEX_EXTRA_SYS_PATH``, which
only the PEX bootstrap reads; a child started with the venv's interpreter would not find them. With the uv
environment (no such variable) this does nothing.
"""

import os

_roots = os.environ.get("PEX_EXTRA_SYS_PATH")
if _roots:
    _paths = [os.path.abspath(root) for root in _roots.split(os.pathsep) if root]
    _inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*_paths, *([_inherited] if _inherited else [])])
