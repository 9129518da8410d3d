"""Import a function's handler from its CodeUri folder, as the Lambda runtime would, but in-process.

Every function folder has an `app.py`, so modules are loaded by file path under a name unique to the
folder instead of through sys.path, where the first `app` would shadow all the others.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[Any, Any], Any]


def load_handler(code_dir: str | Path, handler: str) -> Handler:
    """`handler` is the template's `Handler`: `module.function`, the module a dotted path in code_dir."""
    module_path, _, function_name = handler.rpartition(".")
    if not module_path or not function_name:
        raise ValueError(f"Handler {handler!r} is not of the form module.function")
    code_dir = Path(code_dir).resolve()
    source = code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
    if not source.is_file():
        raise FileNotFoundError(f"Handler module {source} does not exist")

    unique = hashlib.sha1(str(source).encode(), usedforsecurity=False).hexdigest()[:10]
    module_name = f"_switchyard_local_fn_{code_dir.name.replace('-', '_')}_{unique}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, source)
        if spec is None or spec.loader is None:
            raise ImportError(f"Cannot load {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    function = getattr(module, function_name, None)
    if not callable(function):
        raise AttributeError(f"{source} has no callable {function_name!r}")
    return function
