"""Unit tests of the provisioning building blocks (no sockets)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from provisioning import csrf, passwords, tls
from provisioning.auth import AdminStore, reset_password
from provisioning.backend import FieldSpec
from provisioning.claim import claim, current_claim_code, normalize_code
from provisioning.errors import CertificateRejected, InvalidInput, WeakPassword
from provisioning.sessions import SessionStore
from provisioning.settings_form import (
    MISSING,
    check_settings,
    coerce,
    get_path,
    parse_form,
    render_form,
    set_path,
    strip_secrets,
)
from provisioning.status import StatusHub
from provisioning.sysinfo import SysInfo, decode_throttled
from provisioning.throttle import Throttle
from tests.support.pi_sysfs import write_pi_sysfs


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    "pw", ["short", "password1234", "aaaaaaaaaaaaaaaa", "x" * 300, "raspberrypi123"]
)
def test_weak_passwords_refused(pw: str) -> None:
    with pytest.raises(WeakPassword):
        passwords.check_policy(pw)


def test_password_hash_is_argon2id_and_verifies() -> None:
    h = passwords.hash_password("a decent passphrase")
    assert h.startswith("$argon2id$")
    assert passwords.verify_password(h, "a decent passphrase")
    assert not passwords.verify_password(h, "a decent passphrasE")
    assert not passwords.verify_password("garbage", "x")


def test_claim_code_shape_and_files(tmp_path: Path) -> None:
    code = current_claim_code(tmp_path)
    assert code and len(normalize_code(code)) == 16
    assert current_claim_code(tmp_path) == code  # stable until used
    assert (tmp_path / "admin" / "claim-code").stat().st_mode & 0o777 == 0o600
    claim(tmp_path, code.lower(), "a decent passphrase")
    assert current_claim_code(tmp_path) is None
    assert not (tmp_path / "admin" / "claim-code").exists()


def test_reset_password_unclaims(tmp_path: Path) -> None:
    code = current_claim_code(tmp_path)
    assert code
    claim(tmp_path, code, "a decent passphrase")
    fp = AdminStore(tmp_path).credential_fingerprint()
    new_code = reset_password(tmp_path)
    assert new_code != code and current_claim_code(tmp_path) == new_code
    assert not AdminStore(tmp_path).is_claimed()
    assert AdminStore(tmp_path).credential_fingerprint() != fp


def test_sessions_expire_and_follow_password() -> None:
    clock = Clock()
    fp = ["a"]
    store = SessionStore(lambda: fp[0], clock=clock, absolute_s=100, idle_s=30)
    token, _ = store.create()
    assert store.get(token) is not None
    clock.t += 29
    assert store.get(token) is not None
    clock.t += 31
    assert store.get(token) is None  # idle
    token, _ = store.create()
    for _ in range(5):
        clock.t += 20
        store.get(token)
    assert store.get(token) is None  # absolute
    token, _ = store.create()
    fp[0] = "b"
    assert store.get(token) is None  # password changed
    assert store.get("x" * 500) is None and store.get(None) is None


def test_csrf_tokens() -> None:
    secret = b"k" * 32
    t = csrf.token_for(secret, "s:abc")
    assert csrf.check(secret, "s:abc", t)
    assert not csrf.check(secret, "s:abd", t)
    assert not csrf.check(b"j" * 32, "s:abc", t)
    assert not csrf.check(secret, "s:abc", None)
    assert not csrf.check(secret, "s:abc", t[:-1])


def test_throttle_locks_and_doubles() -> None:
    clock = Clock()
    th = Throttle(max_failures=3, lockout_s=10, clock=clock)
    assert th.failure("a") == 0 and th.failure("a") == 0
    assert th.failure("a") == 10 and th.locked_for("a") == 10
    assert th.locked_for("b") == 0
    clock.t += 11
    th.failure("a")
    th.failure("a")
    assert th.failure("a") == 20
    th.success("a")
    assert th.locked_for("a") == 0 and th.remaining("a") == 3


def test_throttle_table_is_bounded() -> None:
    th = Throttle(max_clients=10)
    for i in range(100):
        th.failure(f"10.0.0.{i}")
    assert len(th._entries) == 10


def test_paths() -> None:
    d: dict[str, object] = {}
    set_path(d, "camera.layers.1.width", 640)
    assert d == {"camera": {"layers": [{}, {"width": 640}]}}
    assert get_path(d, "camera.layers.1.width") == 640
    assert get_path(d, "camera.layers.5.width") is MISSING
    assert get_path(d, "nope") is MISSING


def test_coerce_rules() -> None:
    spec = FieldSpec("a.b", "B", "int", minimum=1, maximum=10)
    assert coerce(spec, " 7 ", from_form=True) == 7
    for bad in ("0", "11", "7.5", "", "abc"):
        with pytest.raises(InvalidInput):
            coerce(spec, bad, from_form=True)
    with pytest.raises(InvalidInput):
        coerce(spec, True, from_form=False)
    f = FieldSpec("a.f", "F", "float", minimum=0, maximum=1)
    for bad in ("nan", "inf", "2"):
        with pytest.raises(InvalidInput):
            coerce(f, bad, from_form=True)
    u = FieldSpec("a.u", "U", "url", required=False)
    assert coerce(u, "", from_form=True) == ""
    with pytest.raises(InvalidInput):
        coerce(u, "javascript:alert(1)", from_form=True)


def test_parse_form_keeps_secret_and_ignores_unknown() -> None:
    specs = [
        FieldSpec("n.user", "User"),
        FieldSpec("n.pw", "Pw", secret=True, required=False),
        FieldSpec("n.on", "On", "bool"),
    ]
    current = {"n": {"user": "a", "pw": "s3cret", "on": True}}
    new, errors = parse_form(specs, {"n.user": "b", "n.pw": "", "evil.key": "x"}, current)
    assert errors == {} and new == {"n": {"user": "b", "pw": "s3cret", "on": False}}
    assert current["n"]["user"] == "a"  # not mutated
    assert strip_secrets(specs, new) == {"n": {"user": "b", "on": False}}
    html = render_form(specs, current, {"n.user": "<b>bad</b>"})
    assert "s3cret" not in html and "<b>bad</b>" not in html and "&lt;b&gt;bad" in html
    assert check_settings(specs, {"n": {"user": 5}}) == {
        "n.user": "Use text.",
        "n.on": ("This setting is missing."),
    }


def test_sysinfo_from_a_fake_pi(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/loadavg").write_text("0.50 0.40 0.30 1/100 123\n")
    (tmp_path / "proc/uptime").write_text("3600.5 100.0\n")
    (tmp_path / "proc/meminfo").write_text(
        "MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 600 kB\n"
    )
    (tmp_path / "proc/stat").write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    write_pi_sysfs(tmp_path, temp="48312", throttled="50005")
    info = SysInfo(tmp_path, use_vcgencmd=False)
    snap = info.snapshot()
    assert snap["load"] == [0.5, 0.4, 0.3] and snap["uptime_s"] == 3600.5
    assert snap["memory"] == {"total_kb": 1000, "available_kb": 600}
    assert snap["temperatures_c"] == {"cpu-thermal": 48.312}
    assert snap["throttled"] == [
        "under-voltage now",
        "throttled now",
        "under-voltage has occurred",
        "throttling has occurred",
    ]
    (tmp_path / "proc/stat").write_text("cpu  150 0 150 900 0 0 0 0 0 0\n")
    assert info.cpu_percent() == 50.0
    assert decode_throttled(0) == []
    assert SysInfo(tmp_path / "missing", use_vcgencmd=False).throttled() is None


async def test_status_hub_one_collector_for_many_pages() -> None:
    calls = []

    def source() -> dict[str, object]:
        calls.append(1)
        return {"role": "hub"}

    hub = StatusHub(source, SysInfo(use_vcgencmd=False), interval_s=0.05)
    queues = [hub.subscribe() for _ in range(10)]
    assert all(q is not None for q in queues)
    await asyncio.sleep(0.22)
    assert 3 <= len(calls) <= 7  # one collection per interval, not one per page
    for q in queues:
        assert q is not None and '"role": "hub"' in q.get_nowait()
    await hub.close()


async def test_status_hub_survives_a_failing_backend() -> None:
    def source() -> dict[str, object]:
        raise RuntimeError("boom secret")

    hub = StatusHub(source, SysInfo(use_vcgencmd=False), interval_s=0.05)
    snap = hub.collect()
    assert snap["app"]["state"] == "unknown" and "boom secret" not in str(snap)
    await hub.close()


def test_tls_renews_when_names_change_or_expiring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tls.ensure_certificates(tmp_path, ["unit", "unit.local"], ["10.0.0.2"])
    first = p.cert.read_bytes()
    assert (
        tls.ensure_certificates(tmp_path, ["unit", "unit.local"], ["10.0.0.2"]).cert.read_bytes()
        == first
    )
    p = tls.ensure_certificates(tmp_path, ["unit", "unit.local"], ["10.0.0.3"])
    second = p.cert.read_bytes()
    assert second != first
    cert = x509.load_pem_x509_certificate(second)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "unit.local" in san.get_values_for_type(x509.DNSName)
    # Pretend a year has passed: the certificate is re-issued before it expires.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=380)
    monkeypatch.setattr(tls, "_now", lambda: later)
    third = tls.ensure_certificates(tmp_path, ["unit", "unit.local"], ["10.0.0.3"]).cert
    assert third.read_bytes() != second
    assert (tmp_path / "tls" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls" / "server.key").stat().st_mode & 0o777 == 0o600


def test_tls_manager_serves_uploaded_pair_and_reverts(tmp_path: Path) -> None:
    from tests.support.certs import self_signed

    mgr = tls.TlsManager(tmp_path, ["localhost"], ["127.0.0.1"], "unit")
    cert, key = self_signed()
    mgr.install_custom(cert, key)
    assert mgr.paths.custom and tls.describe(mgr.paths.cert)["Subject"] == "CN=unit.example"
    with pytest.raises(CertificateRejected):
        mgr.install_custom(cert, self_signed()[1])
    mgr.remove_custom()
    assert not mgr.paths.custom


async def test_tls_watch_renews_on_address_change(tmp_path: Path) -> None:
    mgr = tls.TlsManager(tmp_path, ["unit.local"], ["10.0.0.2"], "unit")
    first = mgr.paths.cert.read_bytes()
    task = asyncio.create_task(mgr.watch(lambda: (["unit.local"], ["10.0.0.9"]), 0.05))
    try:
        async with asyncio.timeout(10):
            while mgr.paths.cert.read_bytes() == first:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "10.0.0.9" in tls.describe(mgr.paths.cert)["Names"]


def test_unit_hostnames() -> None:
    from provisioning.names import dns_label, unit_hostnames

    assert dns_label("Kiosk Lobby #2") == "kiosk-lobby-2"
    assert dns_label("<script>") == "script" and dns_label("***") == "edge-appliance"
    names = unit_hostnames("Kiosk Lobby")
    assert names[0] == "kiosk-lobby.local" and names[-1] == "localhost"
