"""The web interface for officers and managers: server-rendered pages, Vietnamese first.

:func:`install` mounts the static files, the page routers and the page error handlers on the app.
"""

from soc_api.web.install import install

__all__ = ["install"]
