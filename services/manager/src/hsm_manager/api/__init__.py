"""REST API of the manager: a Flask app factory (``app.create_app``) served by gunicorn (``server``).

Only this package imports flask. Routes translate HTTP: they call the mirroring service and shape its
results (``views``); what is decided lives in ``hsm_manager.mirroring`` and ``hsm_manager.decide``.
"""
