"""REST API of the manager: a Flask app factory (``app.create_app``) served by gunicorn (``server``).

Only this package imports flask; the modules that decide (``mirror``, ``paging``, ``envelope``) are pure.
"""
