"""The one rule for registries of named classes: a well-formed name, registered once."""

from __future__ import annotations

import pytest

from peftbench.core.registry import register_class


class Thing:
    name = "thing"


def test_a_class_is_registered_once_as_an_instance():
    registry: dict[str, Thing] = {}
    assert register_class(registry, "Thing", Thing) is Thing
    assert isinstance(registry["thing"], Thing)
    with pytest.raises(ValueError, match=r"Thing 'thing' is registered twice \(Thing\)"):
        register_class(registry, "Thing", Thing)


@pytest.mark.parametrize("name", ["Thing", "2things", "a-thing", "", None])
def test_a_badly_formed_name_is_refused_with_the_rule(name: str | None):
    bad = type("Bad", (), {} if name is None else {"name": name})
    registry: dict[str, object] = {}
    with pytest.raises(ValueError, match=r"Task type name .* of Bad must match \^\[a-z\]"):
        register_class(registry, "Task type", bad)
    assert registry == {}
