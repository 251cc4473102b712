"""A Sphinx extension: each page loads each of its scripts once.

sphinx-thebe and sphinx-togglebutton, which Jupyter Book 1 always loads, register their
inline configuration (``const THEBE_JS_URL = ...``) twice, once with the file name
``None`` and once with ``''``, so Sphinx does not see the repeat; in the browser the
second ``const`` is a SyntaxError on every page ("Identifier 'THEBE_JS_URL' has already
been declared"). This drops a script that repeats an earlier one (same file or body,
same priority and attributes) from each page. tests/browser/test_playground_pages.py
checks that every page loads without an error in the console.
"""

from __future__ import annotations


def _key(js) -> tuple:
    attributes = getattr(js, "attributes", {})
    return (getattr(js, "filename", None) or "", getattr(js, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _unique(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if isinstance(scripts, list):  # the builder's own list: edited in place
        seen, unique = set(), []
        for js in scripts:
            if _key(js) not in seen:
                seen.add(_key(js))
                unique.append(js)
        scripts[:] = unique


def setup(app):
    # Late: myst-nb adds each page's own scripts in its handler of this event.
    app.connect("html-page-context", _unique, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
