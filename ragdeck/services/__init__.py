"""Adapters to the outside world, one module per component.

Each adapter satisfies a Protocol of the domain (``ragdeck.console.interfaces`` for the shared seams, a
``ragdeck.console.<package>.ports`` for one capability's) without importing ``ragdeck.console``.
Plain data types shared across the boundary live in ``ragdeck.services.types``.
"""
