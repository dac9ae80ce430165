"""HTML pages from the package's jinja2 templates (``search/templates``), autoescaped; a
score's strength class is the ``strength`` filter (``search.strength``)."""

from __future__ import annotations

from typing import Any

from search.strength import strength

__all__ = ["render"]


def render(template: str, **context: Any) -> str:
    """Render one of the package's templates (e.g. ``report.html.j2``) with ``context``."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(loader=PackageLoader("search", "templates"),
                              autoescape=select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["strength"] = strength
    text: str = environment.get_template(template).render(**context)
    return text
