"""The tlgan REST API: FastAPI app factory (``api.app.create_app``), routes, batching."""
