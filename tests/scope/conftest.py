"""Fixtures of the driver tests: the fake SerialEM module, loaded once."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def fake_serialem() -> ModuleType:
    """`fake_serialem.py` beside this file (tests are imported by path, not as a package)."""
    name = "fake_serialem"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
