"""Tab state sealed before Reflex persists it (``iris_reflex/state/sealed.py``).

The states are the app's own, persisted by Reflex's own state managers: Redis (a real
server) and disk (a real folder). Each check plants values nobody could guess (a message
body, a file name, a TOTP secret, recovery codes, a second-factor challenge) and looks for
them byte for byte in what was stored.
"""

from __future__ import annotations

import asyncio
import pickle
import secrets
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import reflex as rx
from reflex.istate.manager.disk import StateManagerDisk
from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.redis import StateManagerRedis
from reflex.istate.manager.token import BaseStateToken
from reflex.state import BaseState
from reflex_base.utils.exceptions import StateSchemaMismatchError

import iris_reflex.iris_reflex  # noqa: F401  (registers every state on rx.State)
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.message_views import MessageView
from iris_reflex.state import rows, sealed
from iris_reflex.state.auth_forms import AuthFormState
from iris_reflex.state.conversation import MessagesState
from iris_reflex.state.security import SecurityState
from iris_reflex.state.sidebar import SidebarState
from tests.redis_server import REDIS_URL, require_redis


class Secrets:
    """Fresh private values, and the byte strings that must never be found stored."""

    def __init__(self) -> None:
        self.body = f"body-{secrets.token_hex(12)}"
        self.file_name = f"file-{secrets.token_hex(8)}.pdf"
        self.totp = f"TOTP{secrets.token_hex(10).upper()}"
        self.code = f"code-{secrets.token_hex(6)}"
        self.challenge = f"challenge-{secrets.token_hex(12)}"

    @property
    def needles(self) -> set[bytes]:
        return {
            v.encode() for v in (self.body, self.file_name, self.totp, self.code, self.challenge)
        }


def _view(plant: Secrets) -> MessageView:
    now = datetime.now(UTC)
    file = AttachmentView(7, 1, plant.file_name, "application/pdf", "file", 10, None, None, False)
    return MessageView(1, 1, 1, 2, "text", plant.body, now, None, None, None, None, (file,))


def _sub(root: BaseState, cls: type[rx.State]) -> Any:
    return root.get_substate(cls.get_full_name().split(".")[1:])


def _fill_one(state: Any, plant: Secrets) -> None:
    """What a tab holds while a message with a file is on screen (and in the sidebar's
    preview), two-step sign-in is being set up, or a login's second step is pending."""
    if isinstance(state, MessagesState):
        state._views = [_view(plant)]
        row = rows.MessageRow(id=1, body=plant.body)
        row.attachments = [rows.AttachmentRow(name=plant.file_name)]
        state.messages = [row]
    elif isinstance(state, SidebarState):
        state.chat_rows = [rows.ConversationRow(username="bob", preview=plant.body)]
    elif isinstance(state, SecurityState):
        state.enrol_secret, state.enrol_qr = plant.totp, f"<svg>{plant.totp}</svg>"
        state.new_codes = [plant.code]
    elif isinstance(state, AuthFormState):
        state._challenge = plant.challenge


PLANTED = (MessagesState, SidebarState, SecurityState, AuthFormState)


def _fill(root: BaseState, plant: Secrets) -> None:
    for cls in PLANTED:
        _fill_one(_sub(root, cls), plant)


def _tree() -> BaseState:
    return rx.State(_reflex_internal_init=True)


def _messages(root: BaseState) -> Any:
    return root.get_substate(MessagesState.get_full_name().split(".")[1:])


def _flipped(payload: bytes) -> bytes:
    """A stored state with one bit of its ciphertext flipped (a pickle ends with a few
    opcodes after the sealed bytes; 40 from the end is inside them)."""
    at = len(payload) - 40
    return payload[:at] + bytes([payload[at] ^ 0x01]) + payload[at + 1 :]


def _holding(values: list[bytes], needles: set[bytes]) -> list[bytes]:
    return [n for n in needles if any(n in v for v in values)]


# ---------------------------------------------------------------------------- the seal itself


def test_every_iris_state_is_sealed():
    """A state added later is sealed without anyone remembering to: a check, not a rule."""
    pending, found = [rx.State], []
    while pending:
        cls = pending.pop()
        pending.extend(cls.get_substates())
        if cls.__module__.startswith("iris_reflex."):
            found.append(cls)
    assert {c.__name__ for c in found} >= {"SessionState", "MessagesState", "AuthFormState"}
    assert [c.__name__ for c in found if not issubclass(c, sealed.Sealed)] == []


def test_a_sealed_state_round_trips_and_its_pickle_holds_no_plaintext():
    plant = Secrets()
    root = _tree()
    _fill(root, plant)
    payloads = {}
    pending: list[BaseState] = [root]
    while pending:
        state = pending.pop()
        pending.extend(state.substates.values())
        payloads[type(state)] = state._serialize()
    assert _holding(list(payloads.values()), plant.needles) == []
    back = BaseState._deserialize(payloads[MessagesState])
    assert isinstance(back, MessagesState)
    assert back._views[0].body == plant.body
    assert back.messages[0].body == plant.body
    assert back.messages[0].attachments[0].name == plant.file_name
    security = BaseState._deserialize(payloads[SecurityState])
    assert (security.enrol_secret, security.new_codes) == (plant.totp, [plant.code])
    assert BaseState._deserialize(payloads[AuthFormState])._challenge == plant.challenge


def test_sealing_leaves_the_live_state_as_it_was():
    """Reflex's ``__getstate__`` hands back the instance's own dict: it must not be emptied."""
    plant = Secrets()
    root = _tree()
    _fill(root, plant)
    messages = _messages(root)
    messages._serialize()
    assert messages.messages[0].body == plant.body and messages._views[0].body == plant.body


def test_a_tampered_blob_is_refused():
    plant = Secrets()
    root = _tree()
    _fill(root, plant)
    blob = _messages(root).__getstate__()[sealed.SEALED_KEY]
    for index in (1, 20, len(blob) - 1):  # the nonce, the ciphertext, the tag
        bad = bytearray(blob)
        bad[index] ^= 0x01
        with pytest.raises(sealed.SealError):
            sealed.unseal(bytes(bad), label=MessagesState.get_full_name())
    # The same through Reflex: its loader reports the state as unusable (a fresh one follows).
    with pytest.raises(StateSchemaMismatchError):
        BaseState._deserialize(_flipped(_messages(root)._serialize()))


def test_a_blob_moved_to_another_state_class_is_refused():
    root = _tree()
    _fill(root, Secrets())
    blob = _messages(root).__getstate__()[sealed.SEALED_KEY]
    sidebar = SidebarState.__new__(SidebarState)
    with pytest.raises(sealed.SealError, match="not authentic"):
        sidebar.__setstate__({sealed.SEALED_KEY: blob})


def test_an_unsealed_pickle_is_refused():
    """A pickle from before sealing (or forged) is never loaded as it is."""
    messages = MessagesState.__new__(MessagesState)
    with pytest.raises(sealed.SealError, match="no sealed state"):
        messages.__setstate__({"messages": [], "_views": []})


def test_another_deployments_seal_is_refused(monkeypatch: pytest.MonkeyPatch):
    from iris_reflex.settings import get_settings

    label = MessagesState.get_full_name()
    blob = sealed.seal({"x": 1}, label=label)
    sealed._cipher.cache_clear()
    monkeypatch.setattr(get_settings(), "jwt_secret", "another-deployment-" + "x" * 32)
    try:
        with pytest.raises(sealed.SealError):
            sealed.unseal(blob, label=label)
        assert sealed.unseal(sealed.seal({"x": 1}, label=label), label=label) == {"x": 1}
    finally:
        sealed._cipher.cache_clear()


def test_two_seals_of_the_same_state_differ():
    """A fresh nonce each time: equal states give unrelated ciphertexts."""
    root = _tree()
    _fill(root, Secrets())
    first = _messages(root).__getstate__()[sealed.SEALED_KEY]
    second = _messages(root).__getstate__()[sealed.SEALED_KEY]
    assert first != second and first[1:13] != second[1:13]


# ------------------------------------------------------------------ through Reflex's managers


@pytest.fixture
def redis_client() -> Iterator[None]:
    require_redis()
    yield None


def _token(cls: type[rx.State] = MessagesState) -> BaseStateToken:
    return BaseStateToken(ident=f"sealtest{secrets.token_hex(8)}", cls=cls)


async def _store(manager: Any, token: BaseStateToken, plant: Secrets) -> None:
    """One event's worth: the tab's states filled, then persisted as Reflex persists them."""
    for cls in PLANTED:
        async with manager.modify_state(token.with_cls(cls)) as root:
            _fill_one(_sub(root, cls), plant)


def test_redis_holds_no_private_value_and_gives_it_back(redis_client: None):
    import redis
    import redis.asyncio as aioredis

    plant = Secrets()
    token = _token()

    async def scenario() -> Any:
        manager = StateManagerRedis(redis=aioredis.from_url(REDIS_URL))
        await _store(manager, token, plant)
        await manager.close()
        reader = StateManagerRedis(redis=aioredis.from_url(REDIS_URL))
        root = await reader.get_state(token)
        await reader.close()
        return _messages(root)

    messages = asyncio.run(scenario())
    client = redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{token.ident}*"))
        values = [client.get(k) or b"" for k in keys]
        stored = {k.decode().split("_", 1)[1] for k in keys}
        assert MessagesState.get_full_name() in stored  # what is scanned is the tab's state
        assert SecurityState.get_full_name() in stored
        assert _holding(values, plant.needles) == []
        # ...and it is the real state, sealed: another worker reads the body back.
        assert messages.messages[0].body == plant.body
        assert messages._views[0].attachments[0].name == plant.file_name
        ttl = client.ttl(f"{token.ident}_{MessagesState.get_full_name()}")
        assert 0 < ttl <= rx.config.get_config().redis_token_expiration
    finally:
        if keys:
            client.delete(*keys)
        client.close()


def test_a_tampered_redis_copy_gives_the_tab_a_fresh_state(redis_client: None):
    import redis
    import redis.asyncio as aioredis

    plant = Secrets()
    token = _token()
    key = f"{token.ident}_{MessagesState.get_full_name()}"

    async def read() -> Any:
        reader = StateManagerRedis(redis=aioredis.from_url(REDIS_URL))
        root = await reader.get_state(token)
        await reader.close()
        return _messages(root)

    async def store() -> None:
        manager = StateManagerRedis(redis=aioredis.from_url(REDIS_URL))
        await _store(manager, token, plant)
        await manager.close()

    client = redis.from_url(REDIS_URL)
    try:
        asyncio.run(store())
        assert asyncio.run(read()).messages[0].body == plant.body
        client.set(key, _flipped(client.get(key) or b""))
        assert asyncio.run(read()).messages == []
    finally:
        keys = list(client.scan_iter(match=f"{token.ident}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_disk_state_files_hold_no_private_value_and_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Reflex's disk mode (``REFLEX_STATE_MANAGER_MODE=disk``) goes through the same seal;
    start-up makes its folder private even when an earlier run left it open."""
    from iris_reflex import startup

    folder = tmp_path / "states"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    left = folder / "left-by-an-older-run.pkl"
    left.write_bytes(b"")
    left.chmod(0o644)
    monkeypatch.setenv("REFLEX_STATES_WORKDIR", str(folder))
    monkeypatch.setattr(rx.config.get_config(), "state_manager_mode", "disk")
    assert startup.private_state_folder() == folder
    plant = Secrets()
    token = _token()

    async def scenario() -> Any:
        manager = StateManagerDisk()
        await _store(manager, token, plant)
        await manager.close()
        reader = StateManagerDisk()  # as after a restart: read back from the files
        root = await reader.get_state(token)
        await reader.close()
        return _messages(root)

    messages = asyncio.run(scenario())
    files = [p for p in folder.iterdir() if p != left]
    assert len(files) >= 4  # one per state of the tab
    assert _holding([p.read_bytes() for p in files], plant.needles) == []
    assert messages.messages[0].body == plant.body
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}


def test_private_state_folder_does_nothing_outside_disk_mode():
    assert rx.config.get_config().state_manager_mode != "disk"
    from iris_reflex import startup

    assert startup.private_state_folder() is None


@pytest.mark.parametrize("mode", ["memory", "redis"])
def test_memory_mode_never_seals(mode: str, monkeypatch: pytest.MonkeyPatch, request):
    """One worker keeps states in memory: no pickle, so no seal and no cost. (The Redis
    manager, driven the same way, seals: the count is real.)"""
    import redis.asyncio as aioredis

    if mode == "redis":
        request.getfixturevalue("redis_client")
    calls = []
    real = sealed.seal

    def counting(fields: dict[str, Any], *, label: str) -> bytes:
        calls.append(label)
        return real(fields, label=label)

    monkeypatch.setattr(sealed, "seal", counting)
    token = _token()

    async def scenario() -> Any:
        if mode == "memory":
            manager: Any = StateManagerMemory()
        else:
            manager = StateManagerRedis(redis=aioredis.from_url(REDIS_URL))
        await _store(manager, token, Secrets())
        root = await manager.get_state(token)
        await manager.close()
        return root

    assert _messages(asyncio.run(scenario())).messages != []
    if mode == "memory":
        assert calls == []
    else:
        assert MessagesState.get_full_name() in calls
        import redis

        client = redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{token.ident}*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_the_sealed_pickle_is_what_reflex_stores():
    """Reflex stores ``pickle.dumps((schema, state))``: the state part is the one sealed entry."""
    root = _tree()
    _fill(root, Secrets())
    schema, inner = pickle.loads(_messages(root)._serialize())  # noqa: S301 - our own
    assert schema == MessagesState._to_schema()
    assert isinstance(inner, MessagesState)
