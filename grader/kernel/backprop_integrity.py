"""Detect student code that replaced functions the hidden checks rely on.

Student code runs in the grading kernel before the hidden tests, and Python lets it
replace almost anything: `numpy.allclose`, `torch.Tensor.item`, `builtins.abs`, or the
checks themselves. The grading kernel imports backprop_checks at startup, before the
first cell runs (`Execute.extra_arguments` in nbgrader_config.py), so the snapshot taken
when this module is imported holds the original objects. Every check compares the
current objects with that snapshot and fails, naming each one that was replaced.

NOTE: code in the same interpreter can also reach this snapshot (through gc or stack
frames), write to a module's __dict__, or put another module into sys.modules before a
hidden test imports it; this defeats replacing functions, not a determined attack on
the kernel. grader/review.py flags answers that name these modules for manual grading.
"""

import builtins
import sys
import types

# Bound here, so that this module keeps the original builtins when student code replaces
# those in the builtins module. A replacement of these globals shows in the snapshot.
from builtins import dict, len, sorted, vars

import numpy
import numpy.linalg
import numpy.testing
import torch
import torch.autograd
import torch.nn

# Names that legitimately change while a notebook runs: IPython and ipykernel bind these
# builtins anew around every cell, and torch._dynamo wraps torch.manual_seed when it is
# first imported (torch 2.13).
VOLATILE = frozenset(
    {f"builtins.{name}" for name in ("exit", "quit", "get_ipython", "display", "input", "_", "__", "___", "__IPYTHON__")}
    | {"torch.manual_seed"}
)

# Libraries whose functions may be replaced but need not be complete: a new name does no harm.
LIBRARIES = {
    "builtins": builtins,
    "numpy": numpy,
    "numpy.linalg": numpy.linalg,
    "numpy.testing": numpy.testing,
    "torch": torch,
    "torch.autograd": torch.autograd,
}

# Classes whose instances the checks use. A new attribute on them can shadow a method
# of their C base class (torch.Tensor.item, for example), so added names count too.
CLASSES = {
    "torch.Tensor": torch.Tensor,
    "torch.nn.Parameter": torch.nn.Parameter,
}


def contents(namespace):
    """Return a shallow copy of a module's or class's attributes."""
    return dict(vars(namespace))


class Snapshot:
    """The objects that the watched modules and classes held when the snapshot was taken."""

    def __init__(self):
        self.libraries = {label: contents(module) for label, module in LIBRARIES.items()}
        self.classes = {label: contents(cls) for label, cls in CLASSES.items()}
        self.own_modules = {}

    def watch_own_module(self, module):
        """Add a module of the hidden checks, all of whose globals must stay as they are now.

        The module also rejects assignments to its attributes from then on, so that a
        plain `backprop_checks.check_exercise1_norm = ...` fails at once.
        """
        self.own_modules[module.__name__] = (module, contents(module))
        module.__class__ = ProtectedModule

    def replaced(self):
        """Return the dotted names of watched objects that differ from the snapshot, sorted."""
        names = []
        for label, original in self.libraries.items():
            names += changed_names(label, original, contents(LIBRARIES[label]), added_count=False)
        for label, original in self.classes.items():
            names += changed_names(label, original, contents(CLASSES[label]), added_count=True)
        for label, (module, original) in self.own_modules.items():
            names += changed_names(label, original, contents(module), added_count=True)
            if sys.modules.get(label) is not module:
                names.append(f"sys.modules[{label!r}]")
        return sorted(names)


class ProtectedModule(types.ModuleType):
    """A module whose attributes cannot be set or deleted in the usual way."""

    def __setattr__(self, name, value):
        raise AttributeError(f"{self.__name__}.{name} belongs to the grader and cannot be changed")

    def __delattr__(self, name):
        raise AttributeError(f"{self.__name__}.{name} belongs to the grader and cannot be deleted")


def changed_names(label, original, current, added_count):
    """Return label.name for each entry replaced or deleted, and added when `added_count`."""
    names = []
    for name, value in original.items():
        if f"{label}.{name}" in VOLATILE:
            continue
        if name not in current or current[name] is not value:
            names.append(f"{label}.{name}")
    if added_count:
        names += [f"{label}.{name}" for name in current if name not in original]
    return names


SNAPSHOT = Snapshot()


def assert_untampered(snapshot=SNAPSHOT):
    """Fail when student code replaced a function that the checks or their libraries use.

    Raises:
        AssertionError: naming up to five replaced objects.
    """
    replaced = snapshot.replaced()
    if replaced:
        shown = ", ".join(replaced[:5]) + (f" and {len(replaced) - 5} more" if len(replaced) > 5 else "")
        raise AssertionError(
            f"Your code replaced {shown}, which the grader relies on, so this test cannot be trusted and "
            "gives no points. Remove the code that assigns to these names."
        )


SNAPSHOT.watch_own_module(sys.modules[__name__])
