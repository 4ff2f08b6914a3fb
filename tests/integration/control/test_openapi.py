"""The OpenAPI document describes the API: schemathesis generates requests from it (a bounded
number per operation), and every response must be a non-5xx that matches the document."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.sfu import Unit, start_unit

MAX_EXAMPLES = 40
# schemathesis' own strategies trip a Hypothesis deprecation notice; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


class ThreadedUnit:
    """A unit serving from its own event loop in a thread (schemathesis calls are blocking)."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.unit: Unit = self.run(self._start(data_dir))

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _start(self, data_dir: Path) -> Unit:
        unit = await start_unit(data_dir)
        svc = unit.context.rooms
        alice = await svc.connect("alice", "lobby")
        bob = await svc.connect("bob", "lobby")
        cam = await svc.publish_track(alice.sid, "video", "cam")
        await svc.subscribe(bob.sid, cam.sid)
        return unit

    def close(self) -> None:
        self.run(self.unit.client.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedUnit]:
    unit = ThreadedUnit(tmp_path_factory.mktemp("openapi"))
    yield unit
    unit.close()


def load_schema():
    """The document in the repository; the server's address is given per call."""
    text = resources.files("edge_sfu.rest").joinpath("openapi.yaml").read_text()
    loaded = schemathesis.openapi.from_dict(yaml.safe_load(text))
    loaded.config.generation.update(max_examples=MAX_EXAMPLES, database="none")
    return loaded


schema = load_schema()


@schema.parametrize()
def test_api_conforms(case, served: ThreadedUnit) -> None:
    case.call_and_validate(
        base_url=served.unit.base,
        headers=served.unit.auth,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=10,
    )


def test_the_daemon_serves_the_document_in_the_repo(served: ThreadedUnit) -> None:
    resp = requests.get(served.unit.base + "/v1/openapi.yaml", timeout=10)
    assert resp.status_code == 200
    assert yaml.safe_load(resp.text)["openapi"].startswith("3.")
    documented = set(yaml.safe_load(resp.text)["paths"])
    routed = {
        r.resource.canonical.replace("{room}", "{RoomSid}")
        .replace("{participant}", "{ParticipantSid}")
        .replace("{track}", "{TrackSid}")
        for r in served.unit.client.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/v1/")
    }
    # every REST route is documented (signaling's WebSocket is not a REST resource)
    assert routed - documented <= {"/v1/signaling"}
