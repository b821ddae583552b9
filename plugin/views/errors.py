"""Errors as JSON for the API and as a small page elsewhere; never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from ..service import Overloaded

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            code = (exc.name or "error").lower().replace(" ", "_")
            return jsonify(error={"code": code, "message": exc.description}), exc.code
        return render_template("error.html", code=exc.code, name=exc.name,
                               message=exc.description), exc.code

    @app.errorhandler(Overloaded)
    def overloaded(exc: Overloaded):
        log.warning("shed %s: %s", request.path, exc)
        headers = {"Retry-After": str(exc.retry_after)}
        if request.endpoint in ("sidebar.record", "sidebar.record_stream"):
            return render_template("sidebar/_problem.html", message=str(exc)), 503, headers
        if "/api/" in request.path:
            return jsonify(error={"code": "overloaded", "message": str(exc)}), 503, headers
        return render_template("error.html", code=503, name="Busy", message=str(exc)), 503, \
            headers

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return http_error(InternalServerError())
