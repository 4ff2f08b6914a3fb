"""The landing page's join form: what it accepts, where it sends people, what it refuses."""

from __future__ import annotations

import pytest

from appliance.landing import JoinForm, JoinInputError, join_target
from edge_sfu.identity import load_or_create_identity
from edge_sfu.invites import create_invite
from edge_sfu.tokens import mint_access_token


@pytest.fixture
def codes(tmp_path):
    identity = load_or_create_identity(tmp_path)
    token = mint_access_token(
        identity.signing_key, identity.account_sid, "alice", room="stand up", ttl=600
    )
    return token, create_invite(identity.auth_token, "stand up")


def test_a_pasted_link_keeps_only_its_path_and_credential(codes):
    token, invite = codes
    for host in ("https://room-4b.local:8443", "http://evil.example", "room-4b.local:8443", ""):
        target = join_target(JoinForm(link=f"{host}/join/stand%20up?invite={invite}"))
        assert target == f"/join/stand%20up?invite={invite}"
    target = join_target(JoinForm(link=f"  https://x/join/stand%20up/?token={token}&x=1 "))
    assert target == f"/join/stand%20up?token={token}"


def test_room_and_code_tell_a_token_from_an_invite(codes):
    token, invite = codes
    assert join_target(JoinForm(room="stand up", code=token)) == f"/join/stand%20up?token={token}"
    assert join_target(JoinForm(room="stand up", code=invite)).endswith(f"?invite={invite}")
    # A room name with URL syntax stays one path segment.
    assert join_target(JoinForm(room="a?b#c", code=invite)).startswith("/join/a%3Fb%23c?invite=")


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (JoinForm(), "link", "Paste the link"),
        (JoinForm(link="https://unit/admin/keys"), "link", "not a join link"),
        (JoinForm(link="https://unit/join/a"), "link", "not a join link"),
        (JoinForm(link="https://unit/join/a?token=x&invite=y"), "link", "not a join link"),
        (JoinForm(link="https://unit/join/a/b?token=x"), "link", "not a join link"),
        (JoinForm(link="x" * 5000), "link", "too long"),
        (JoinForm(code="a.b.c"), "room", "room's name"),
        (JoinForm(room="a/b", code="a.b.c"), "room", "not a room name"),
        (JoinForm(room="standup"), "code", "token or invite you were given"),
        (JoinForm(room="standup", code="not a token"), "code", "not a token or an invite"),
        (JoinForm(room="standup", code="a.b.c"), "code", "not a token or an invite"),
    ],
)
def test_what_the_form_refuses(form, field, message):
    with pytest.raises(JoinInputError) as refused:
        join_target(form)
    assert refused.value.field == field
    assert message in str(refused.value)
