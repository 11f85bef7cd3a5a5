"""The interactive face editor: one static page served at ``/`` that calls the public API.

``api.web.router.router`` serves the page and its assets (plain HTML, one JS module, one CSS
file, shipped in ``api/web/static``; no build step, nothing fetched from other hosts).
"""
