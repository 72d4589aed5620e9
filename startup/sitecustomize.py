"""Python loads this module at start-up when its folder is on PYTHONPATH, as `make run`,
`make serve`, `make simulate` and `make train` put it (scripts/startup-env):

- Warnings raised inside installed libraries (deprecations in Rasa, TensorFlow, SQLAlchemy,
  ...) are not printed; warnings raised by this project's own code still are, and errors and
  logs are untouched. Rasa resets the warning filters while it starts, so a filter set here
  would not last; instead the function that prints a warning skips those raised outside
  the project.
- jax is not imported: TensorFlow tries it when it is installed (for an export path Rasa
  never uses), which costs each rasa process about 65 MB and a second. Marked missing, the
  import fails the way TensorFlow expects when jax is absent.
"""

import os
import sys
import warnings

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
LIBRARIES = (sys.prefix + os.sep, sys.base_prefix + os.sep)
_print_warning = warnings.showwarning


def _raised_by_project(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(PROJECT) and not path.startswith(LIBRARIES)


def print_project_warning(message, category, filename, lineno, file=None, line=None):
    if _raised_by_project(str(filename)):
        _print_warning(message, category, filename, lineno, file, line)


warnings.showwarning = print_project_warning
sys.modules.setdefault("jax", None)
