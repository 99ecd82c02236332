"""`advisor.bundle.load_bundle`, where bundles exported by advisor 0.1 say to find it (their
README.md); the bundle code lives in `advisor.export.bundle`."""

from __future__ import annotations

from advisor.export.bundle import Bundle, load_bundle

__all__ = ["Bundle", "load_bundle"]
