"""The web app: ``create_app(service_factory)`` serves the JSON API and the page."""

from __future__ import annotations

from search.web.app import create_app

__all__ = ["create_app"]
