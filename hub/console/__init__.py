"""The web console: server-rendered pages for every role, served by the hub at ``/console``.

A browser signs in once with an API token and then carries an HttpOnly, SameSite session
cookie; every form carries a CSRF token. Pages call the same services as the API, so a page
shows exactly what the signed-in role and organization may see through the API.
"""

from fedpark.hub.console.routes import install

__all__ = ["install"]
