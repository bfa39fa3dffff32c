"""The email package's policy for the emails we write and read: its default one, with each
header's class made once.

The standard library's header registry makes a new class for every header it is given (the
header's kind and the policy's base class combined, ``type(...)`` each time: Python 3.11): a
notification's twenty-odd headers, its parts' included, made twenty-odd classes, most of the
time composing it took. Kept per kind of header, writing a notification and flattening it for
SMTP went from 13.5 to 9.5 million instructions (valgrind's callgrind), and the worker inside
``jobchat serve`` computes its notifications in the interpreter the requests run in. The classes
are the same as the registry's own, so every header parses, folds and reads as before.
"""

from __future__ import annotations

from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import default


class _ClassPerKind(HeaderRegistry):
    """The default header registry, the class of each kind of header (address, date,
    unstructured...) made on its first use and kept. Kept by kind, not by name: the mail we
    read names what headers it likes, and a dozen kinds bound what is kept."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[object, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = super().__getitem__(name)
        return made


POLICY = default.clone(header_factory=_ClassPerKind())
