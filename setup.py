"""The compiled level loops (perparb/_levels.c). Everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and perparb runs the
same loops in Python (perparb.levels)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("perparb._levels", ["src/perparb/_levels.c"], optional=True,
                             extra_compile_args=["-O2", "-ffp-contract=off"])])
