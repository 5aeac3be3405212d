"""Adapters to the outside world, one module per component.

Each adapter satisfies a Protocol in ``ragdeck.console.interfaces`` without importing ``ragdeck.console``.
Plain data types shared across the boundary live in ``ragdeck.services.types``.
"""
