"""The web console: pages served by the coordinator's REST server, signed in with an API key.

``console_routes`` adds the page, its files and sign-in to the REST app; ``Sessions`` makes and
reads the session cookie that the REST face's gate accepts in place of an ``Authorization`` header
(with a CSRF token on every change). The page itself (``static/``) is plain JavaScript over the REST
API: what a user may see and do is what their key may do through the API.
"""

from seedbed.coordinator.faces.console._routes import console_routes
from seedbed.coordinator.faces.console._session import COOKIE, CSRF_HEADER, Sessions, cookies_of

__all__ = ["COOKIE", "CSRF_HEADER", "Sessions", "console_routes", "cookies_of"]
