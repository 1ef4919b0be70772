"""The driftgate demo: the Gradio UI and the REST API in one server.

    python app.py                  # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT change it)
    driftgate serve                # the same
    make demo                      # the same, after the pipeline has trained the model

REST: POST /predict, GET /health, GET /metrics; OpenAPI docs at /docs and /redoc.
"""

from driftgate.serving.ui import create_app, serve

app = create_app()

if __name__ == "__main__":
    serve(app)
