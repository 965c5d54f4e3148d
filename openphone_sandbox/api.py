"""Flask app: the OpenPhone v1 REST surface plus the /_sandbox test hooks, assembled from blueprints.

Behaviour follows docs/openphone-api.md: raw-key auth (no Bearer), required parameters with 400
envelopes, keyset pagination ending in a null nextPageToken, 202 on send, 10 rps per key with 429,
and an approximate totalItems. Unknown routes answer Flask's HTML 404, as the real gateway
reportedly does. The pieces: `gate` (auth, rate limit, injected faults), `envelope` (errors),
`params` (parameters, windows, pages), `routes/` (one blueprint per resource or hook group).
"""

from __future__ import annotations

from flask import Flask

from . import gate
from .envelope import ApiError, render_api_error
from .routes import HOOKS, V1
from .state import Sandbox
from .web import bind


def create_app(sandbox: Sandbox) -> Flask:
    """Build the Flask app bound to one Sandbox."""
    app = Flask("openphone_sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    bind(app, sandbox)
    gate.install(app)
    app.register_error_handler(ApiError, render_api_error)
    for blueprint in (*V1, *HOOKS):
        app.register_blueprint(blueprint)
    return app


__all__ = ["create_app"]
