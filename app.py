"""The driftgate demo: the Gradio UI and the REST API in one server.

    python app.py                  # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT change it)
    driftgate serve                # the same
    make demo                      # the same, after the pipeline has trained the model

REST: POST /predict, GET /health, GET /metrics; OpenAPI docs at /docs and /redoc.
A bad params.yaml, a missing or tampered model, or a prediction log that is not a database:
one line saying what and where, and exit code 2.
"""

from driftgate.serving.ui import app_or_exit, main

if __name__ == "__main__":
    main()
else:  # imported, e.g. `uvicorn app:app`
    app = app_or_exit()
