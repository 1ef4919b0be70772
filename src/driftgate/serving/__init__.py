"""The served model: REST API and Gradio demo in one FastAPI app.

schema.py (the request record and its checks), model.py (the served model and its card),
batcher.py (request batching for scikit-learn), metrics.py (Prometheus), service.py (what the
routes and the UI share), api.py (the routes), docs.py (offline /docs and /redoc), uploads.py
(reading Batch uploads), batch.py (the Batch tab's drift check), ui.py (the Gradio tabs and
start-up). The prediction log is driftgate.store.predictions.
"""
