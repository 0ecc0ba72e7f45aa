"""The runnable examples in the coverage, split and validate docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "flightplans.validate",
    "flightplans.split",
    "flightplans.coverage.plan",
    "flightplans.coverage.wgs84",
    "flightplans.coverage.swaths",
    "flightplans.coverage.order",
    "flightplans.coverage.freespace",
    "flightplans.coverage.decompose",
    "flightplans.coverage.robust",
    "flightplans.energy",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
