"""Sphinx extension: a page's launch buttons (Colab, Binder, ...) open its student version.

``student_notebooks`` in the Sphinx configuration maps a page (its docname, such as
``book/lab_implement_adam``) to a notebook path in the repository (such as
``coursework/lab_implement_adam_student.ipynb``). On those pages, every launch button that
sphinx-book-theme built for the page's own notebook is pointed at that notebook instead,
so that a student who launches the lab gets the version without solutions.
"""

from __future__ import annotations

from typing import Any


def point_launch_buttons(mapping: dict[str, str], pagename: str,
                         context: dict[str, Any]) -> None:
    """Rewrite the launch buttons' URLs of ``pagename`` in a page's HTML context."""
    target = mapping.get(pagename)
    if not target:
        return
    own = f"{pagename}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            url = button.get("url", "")
            if own in url:
                button["url"] = url.replace(own, target)


def _on_page(app, pagename, templatename, context, doctree) -> None:
    point_launch_buttons(app.config.student_notebooks, pagename, context)


def setup(app):
    app.add_config_value("student_notebooks", {}, "html")
    # after sphinx-book-theme's add_launch_buttons (priority 501)
    app.connect("html-page-context", _on_page, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
