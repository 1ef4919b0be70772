"""Hot swap: the served model follows the model registry's `champion` alias.

    swap.check(service)            # one look: load a changed champion and serve it
    stop = swap.watch(service)     # a thread that looks every second; stop.set() ends it

The registry is the one in the prediction log's database. A new champion is read from it (its
bytes' sha256 checked by the registry and again against its card), built into a ServedModel and
put in place with one assignment (`Service.use`), so a request in flight finishes with the model it
started with. A champion that fails to load is said in one line and the old model keeps serving;
it is not tried again until the alias moves. With an empty registry nothing changes: the model
the server started with serves.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Literal

from driftgate.errors import DriftgateError
from driftgate.serving.model import ServedModel
from driftgate.serving.service import Service

EVERY = 1.0  # seconds between looks at the alias
Outcome = Literal["empty", "unchanged", "swapped", "refused"]


def _say(message: str) -> None:
    print(f"driftgate serve: {message}", file=sys.stderr, flush=True)


def serving_sha(service: Service) -> str:
    """The sha256 of the model serving now (its card's)."""
    return str(service.model.card.get("model_sha256", ""))


def check(service: Service, say: Callable[[str], None] | None = None) -> Outcome:
    """Look at the champion alias once; serve a changed champion. Returns what happened."""
    say = say or _say
    champion = service.registry().champion()
    if champion is None:
        return "empty"
    if champion == serving_sha(service) or champion == service.refused_champion:
        return "unchanged"
    try:
        card, data = service.registry().model(champion)
        model = ServedModel.from_bytes(card, data, service.params, where=f"model registry: model {champion[:12]}")
    except DriftgateError as exc:
        service.refused_champion = champion
        say(f"champion {champion[:12]} refused, {service.model.version} keeps serving: "
            + " ".join(f"{exc.where}: {exc.problem}".split()))
        return "refused"
    except Exception as exc:  # anything else a model can fail with; the server keeps the model it has
        service.refused_champion = champion
        say(f"champion {champion[:12]} refused, {service.model.version} keeps serving: {type(exc).__name__}: {exc}")
        return "refused"
    old = service.model.version
    service.use(model)
    service.refused_champion = None
    say(f"serving the champion {model.version} (was {old})")
    return "swapped"


def watch(service: Service, every: float = EVERY, say: Callable[[str], None] | None = None) -> threading.Event:
    """Check every `every` seconds in a daemon thread until the returned event is set. A look that
    fails (the database away) is said once per failure kind and tried again next time."""
    stop = threading.Event()
    say = say or _say

    def run() -> None:
        last_error = None
        while not stop.is_set():
            try:
                check(service, say)
                last_error = None
            except Exception as exc:  # the registry's database unreachable: serving goes on
                text = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                if text != last_error:
                    say(f"cannot read the model registry ({text}); {service.model.version} keeps serving")
                last_error = text
            stop.wait(every)

    threading.Thread(target=run, name="driftgate-champion-watch", daemon=True).start()
    return stop
