"""Unit tests of topo's core: loader, structure, validation, plan, schema.

A package, so its module names (``unit.test_plan``…) never collide with same-named test
modules elsewhere in ``tests/``.
"""
