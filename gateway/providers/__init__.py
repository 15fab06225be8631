"""Upstream providers behind one interface (:class:`gateway.providers.base.Provider`)."""
