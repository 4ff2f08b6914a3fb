"""The OpenAPI document describes the API: schemathesis generates requests from it (a bounded
number per operation), and every response must be a non-5xx that matches the document."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from edge_sfu.errors import TwilioError
from edge_sfu.recording.compositions import validate_spec
from edge_sfu.rooms import parse_recording_rules, parse_subscribe_rules
from edge_sfu.tokens import mint_access_token
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
    # A body over the unit's size limit is refused before it is read: 413 is a refusal too.
    rejection = loaded.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return loaded


# SDP offers and trickle fragments are text (schemathesis knows text/plain).
schemathesis.serializer.alias("application/sdp", "text/plain")
schemathesis.serializer.alias("application/trickle-ice-sdpfrag", "text/plain")
schema = load_schema()


load_all_checks()
#: Every check schemathesis has (``--checks all``): a request the document allows must be
#: accepted (positive_data_acceptance), one it forbids refused (negative_data_rejection), so
#: the document cannot drift from what the server checks.
ALL_CHECKS = CHECKS.get_all()


def _holds_invalid_rules(case) -> bool:
    """Whether the request carries a rules document the rules parser refuses.

    Rules travel as a JSON document inside a form field: no OpenAPI 3.0 schema can say which
    strings are valid rules (the parser, with its Twilio error codes, is the definition), so
    a schema-valid request whose rules do not parse is refused on purpose, not by drift.
    """
    body = case.body if isinstance(case.body, dict) else {}
    parse = parse_subscribe_rules if case.path.endswith("/SubscribeRules") else None
    for field in ("Rules", "RecordingRules"):
        if not isinstance(body.get(field), str):
            continue
        try:
            (parse or parse_recording_rules)(body[field])
        except TwilioError:
            return True
    return False


def _holds_invalid_layout(case) -> bool:
    """Whether a composition (or hook) request carries a layout or resolution the composition
    grammar refuses: like rules, a JSON document in a form field and a resolution whose
    limits are a product (width x height), which no OpenAPI 3.0 schema can state."""
    body = case.body if isinstance(case.body, dict) else {}
    if not case.path.startswith("/v1/Composition") or case.method.upper() != "POST":
        return False
    spec = {"audio_sources": body.get("AudioSources", [])}
    if "VideoLayout" in body:
        spec["video_layout"] = body["VideoLayout"]
    try:
        validate_spec(spec, str(body.get("Resolution", "640x480")))
    except TwilioError:
        return True
    return False


#: Refusals that depend on the unit's state, not on the request: a name in use (53113), a
#: completed room (53118). Twilio answers them with 400, so the schema cannot rule them out.
STATE_REFUSALS = {53113, 53118}


def _refused_for_state(response: requests.Response) -> bool:
    if response.status_code != 400:
        return False
    try:
        return response.json().get("code") in STATE_REFUSALS
    except ValueError:
        return False


def _credentials(case, served: ThreadedUnit) -> dict[str, str]:
    """The unit's credentials, unless the case's headers are the invalid part under test.

    A negative case may drop or spoil the ``Authorization`` header: adding the credentials
    back would turn it into a valid request, which the unit rightly accepts.
    """
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return {}
    if _is_whip(case):  # WHIP/WHEP take the unit's access tokens, not its API keys
        unit = served.unit
        token = mint_access_token(unit.identity.signing_key, unit.identity.account_sid, "schema")
        return {"Authorization": f"Bearer {token}"}
    return dict(served.unit.auth)


def _is_whip(case) -> bool:
    return case.path.startswith(("/whip", "/whep"))


def _holds_no_offer(case) -> bool:
    """Whether a WHIP/WHEP request's body is text the unit cannot take as an offer or a
    trickle fragment: SDP's grammar (and which media it carries) is beyond OpenAPI 3.0, as
    the rules' grammar is, so the document says ``string`` and the server decides."""
    return _is_whip(case) and case.method.upper() in ("POST", "PATCH")


@schema.parametrize()
def test_api_conforms(case, served: ThreadedUnit) -> None:
    auth = _credentials(case, served)
    response = case.call(base_url=served.unit.base, headers=auth, timeout=10)
    excluded = []
    if (
        _holds_invalid_rules(case)
        or _holds_invalid_layout(case)
        or _holds_no_offer(case)
        or _refused_for_state(response)
    ):
        excluded.append(positive_data_acceptance)
    case.validate_response(
        response,
        checks=ALL_CHECKS,
        excluded_checks=excluded,
        headers=auth,
        transport_kwargs={"base_url": served.unit.base, "headers": auth},
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


def test_the_documented_character_rule_is_the_servers() -> None:
    from edge_sfu.text import FORBIDDEN_PATTERN

    text = resources.files("edge_sfu.rest").joinpath("openapi.yaml").read_text()
    patterns = re.findall(r"pattern: (?:&[\w-]+ )?'([^']*)'", text)
    described = [p for p in patterns if "\\x00" in p]
    assert len(described) == 3  # printable text; room names to join and to create (no "/")
    for pattern in described:
        assert f"[^{FORBIDDEN_PATTERN[1:-1]}]" in pattern.replace("/", "")
