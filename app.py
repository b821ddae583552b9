"""WSGI entry point: `gunicorn app:app` or `flask --app app …`."""

from plugin.app import create_app

app = create_app()
