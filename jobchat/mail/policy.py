"""The email package's policy for the emails we write and read: its default one, with each
header's class made once.

The standard library's header registry makes a new class for every header it is given (the
header's kind and the policy's base class combined, ``type(...)`` each time: Python 3.11): a
notification's twenty-odd headers, its parts' included, made twenty-odd classes, most of the
time composing it took. Kept per header name, writing a notification and flattening it for SMTP
went from 13.5 to 9.5 million instructions (valgrind's callgrind), and the worker inside
``jobchat serve`` computes its notifications in the interpreter the requests run in. The classes
are the same as the registry's own, so every header parses, folds and reads as before.
"""

from __future__ import annotations

from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import default


class _ClassPerName(HeaderRegistry):
    """The default header registry, each name's class made on its first use and kept."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = super().__getitem__(name)
        return made


POLICY = default.clone(header_factory=_ClassPerName())
