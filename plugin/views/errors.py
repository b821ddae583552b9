"""Errors as JSON for the API and as a small page elsewhere; never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from ..service import Overloaded

log = logging.getLogger(__name__)


def wants_json() -> bool:
    """The JSON API (/api/v1/…) and every host's widget API (/zendesk/api/…)."""
    path = request.path
    return path.startswith("/api/") or path.split("/", 3)[2:3] == ["api"]


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep the exception's own headers: a 405 says which methods are allowed (Allow).
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            return jsonify(error={"code": code, "message": exc.description}), exc.code, headers
        return render_template("error.html", code=exc.code, name=exc.name,
                               message=exc.description), exc.code, headers

    @app.errorhandler(Overloaded)
    def overloaded(exc: Overloaded):
        log.warning("shed %s: %s", request.path, exc)
        headers = {"Retry-After": str(exc.retry_after)}
        if wants_json():
            return jsonify(error={"code": "overloaded", "message": str(exc)}), 503, headers
        return render_template("error.html", code=503, name="Busy", message=str(exc)), 503, \
            headers

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return http_error(InternalServerError())
