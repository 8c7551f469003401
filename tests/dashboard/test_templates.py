"""Every page's template compiles (a mistake in one would only show when its page is
first opened)."""

from __future__ import annotations

from atende.dashboard.web import templates


def test_every_template_compiles() -> None:
    names = templates.list_templates()
    assert "base.html" in names and len(names) > 10
    for name in names:
        templates.get_template(name)
