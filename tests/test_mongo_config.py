"""MongoDB settings without a server: write / read concern, waiting for the server, indexes."""

from __future__ import annotations

import socket

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.operations import IndexModel

import run
from registry import create_app
from registry.store import mongo_setup


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def mongo_app(instance_path: str, uri: str | None = None, **overrides):
    """An app on a MongoDB that is not there: a lazy client, fast timeouts."""
    uri = uri or f"mongodb://127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=50&connectTimeoutMS=50"
    return create_app(
        {
            "INSTANCE_PATH": instance_path,
            "TESTING": True,
            "MONGO_URI": uri,
            "MONGO_DBNAME": "never_created",
            "DEMO_SECRETS": True,
            "JOBS_EMBEDDED_WORKER": False,
            "MONGO_OPTIONS": {"connect": False, "serverSelectionTimeoutMS": 50},
            **overrides,
        }
    )


@pytest.fixture
def no_wait(monkeypatch):
    """Start-up without the ping (the server is absent by design in these tests)."""
    monkeypatch.setattr(mongo_setup, "wait_for_server", lambda app: None)


@pytest.fixture
def created(monkeypatch) -> list[tuple[str, str]]:
    """(collection, index name) of every pymongo create_index call; nothing reaches a server."""
    calls: list[tuple[str, str]] = []

    def create_index(self, keys, **kwargs):
        name = IndexModel(keys, **kwargs).document["name"]
        calls.append((self.name, name))
        return name

    monkeypatch.setattr(Collection, "create_index", create_index)
    return calls


def resource_write_concerns(app) -> set[str]:
    return {repr(settings["mongo_write_concern"]) for settings in app.config["DOMAIN"].values()}


def test_the_embedded_store_writes_with_majority_by_default(app):
    assert resource_write_concerns(app) == {repr({"w": "majority"})}
    assert app.test_client().get("/health").status_code == 200


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [("majority", {"w": "majority"}), ("2", {"w": 2}), ({"w": "majority", "j": True}, {"w": "majority", "j": True})],
)
def test_the_write_concern_is_configurable(instance_path, wanted, expected):
    app = create_app({"INSTANCE_PATH": instance_path, "TESTING": True, "MONGO_WRITE_CONCERN": wanted})
    assert resource_write_concerns(app) == {repr(expected)}


def test_the_write_concern_setting_reads_json_numbers_and_words(monkeypatch):
    import settings

    assert settings._write_concern('{"w": "majority", "j": true}') == {"w": "majority", "j": True}
    assert mongo_setup.write_concern({"MONGO_WRITE_CONCERN": settings._write_concern("1")}) == {"w": 1}
    assert settings._write_concern("") is None


def test_a_uri_w_option_is_kept_unless_the_setting_says_otherwise():
    uri = "mongodb://a:27017,b:27017/?replicaSet=rs0&W=3"
    assert mongo_setup.write_concern({"MONGO_URI": uri}) == {"w": 3}
    assert mongo_setup.write_concern({"MONGO_URI": uri.replace("W=3", "w=majority")}) == {"w": "majority"}
    assert mongo_setup.write_concern({"MONGO_URI": uri, "MONGO_WRITE_CONCERN": "1"}) == {"w": 1}
    assert mongo_setup.write_concern({"MONGO_URI": "mongodb://a/"}) == {"w": "majority"}


def test_a_mongodb_app_writes_and_reads_with_majority(instance_path, no_wait):
    app = mongo_app(instance_path)
    assert resource_write_concerns(app) == {repr({"w": "majority"})}
    with app.app_context():
        client = app.data.pymongo().cx
    assert client.read_concern.level == "majority"
    assert client.write_concern.document == {"w": "majority"}
    assert app.config["MONGO_OPTIONS"]["tz_aware"] is True  # Eve's own options are kept


def test_the_read_concern_is_configurable_and_a_uri_level_wins(instance_path, no_wait):
    app = mongo_app(instance_path, MONGO_READ_CONCERN="local")
    with app.app_context():
        assert app.data.pymongo().cx.read_concern.level == "local"
    uri = f"mongodb://127.0.0.1:{closed_port()}/?readConcernLevel=available&w=2"
    app = mongo_app(instance_path, uri=uri)
    with app.app_context():
        client = app.data.pymongo().cx
    assert client.read_concern.level == "available"
    assert resource_write_concerns(app) == {repr({"w": 2})}


def test_read_concern_is_a_pymongo_option_only():
    lazy = MongoClient("mongodb://127.0.0.1:1/", connect=False, readConcernLevel="majority")
    assert lazy.read_concern.level == "majority"
    lazy.close()


def test_start_up_waits_for_mongodb_then_fails_clearly(instance_path, monkeypatch, caplog):
    waits: list[float] = []
    real = mongo_setup.wait_for_server
    monkeypatch.setattr(mongo_setup, "wait_for_server", lambda app: real(app, sleep=waits.append))
    with pytest.raises(RuntimeError, match=r"MongoDB at .* did not answer after 4 attempts.*MONGO_CONNECT_RETRIES"):
        mongo_app(instance_path, MONGO_CONNECT_RETRIES=4)
    assert waits == [0.5, 1.0, 2.0]
    assert sum("not reachable (attempt" in r.getMessage() for r in caplog.records) == 3


def test_start_up_gives_up_when_the_total_wait_is_spent(instance_path, monkeypatch):
    waits: list[float] = []
    real = mongo_setup.wait_for_server
    monkeypatch.setattr(mongo_setup, "wait_for_server", lambda app: real(app, sleep=waits.append))
    with pytest.raises(RuntimeError, match="after 3 attempts"):
        mongo_app(instance_path, MONGO_CONNECT_RETRIES=50, MONGO_CONNECT_WAIT_SECONDS=2)
    assert waits == [0.5, 1.0]


def test_start_up_goes_on_once_mongodb_answers(instance_path, monkeypatch):
    from pymongo.errors import ServerSelectionTimeoutError
    from pymongo.synchronous.database import Database

    answers = iter([ServerSelectionTimeoutError("not yet"), ServerSelectionTimeoutError("not yet"), {"ok": 1}])

    def command(self, *args, **kwargs):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(Database, "command", command)
    waits: list[float] = []
    real = mongo_setup.wait_for_server
    monkeypatch.setattr(mongo_setup, "wait_for_server", lambda app: real(app, sleep=waits.append))
    app = mongo_app(instance_path)
    assert waits == [0.5, 1.0]
    assert app.config["STORE_KIND"] == "mongodb"


def embedded_indexes(app) -> set[tuple[str, str]]:
    """Every index the embedded store has after start and first use of the lazy collections."""
    from registry.admin_ui import session
    from registry.auth import provider, revocation

    with app.app_context():
        db = app.data.driver.db
        for make in (provider.ensure_indexes, revocation.ensure_indexes, session.ensure_indexes):
            make(db)
        return {
            (name, index)
            for name in db.list_collection_names()
            for index in db[name].index_information()
            if index != "_id_"
        }


def test_a_mongodb_app_creates_no_index_at_start(instance_path, no_wait, created):
    app = mongo_app(instance_path)
    assert created == []
    assert app.config["DOMAIN"]["devices"]["mongo_indexes"] == {}
    from registry.admin_ui.session import StoreSessions
    from registry.auth.revocation import TokenRevocations

    with app.app_context():  # nor on first use of the collections that made theirs lazily
        db = app.data.driver.db
        TokenRevocations(lambda: db).collection()
        StoreSessions(lambda: db).collection()
    assert created == []


def test_migrate_creates_every_index_the_embedded_store_has(app, instance_path, no_wait, created, monkeypatch):
    monkeypatch.setenv("MONGO_URI", f"mongodb://127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=50")
    monkeypatch.setenv("DEMO_SECRETS", "1")
    monkeypatch.setenv("INSTANCE_PATH", instance_path)
    monkeypatch.setattr(run.settings, "MONGO_URI", __import__("os").environ["MONGO_URI"])
    monkeypatch.setattr(run.settings, "DEMO_SECRETS", True)
    monkeypatch.setattr(run.settings, "INSTANCE_PATH", instance_path)
    assert run.main(["migrate"]) == 0
    expected = embedded_indexes(app)
    assert len(expected) > 20
    assert expected <= set(created), sorted(expected - set(created))


def test_migrate_refuses_the_embedded_store(capsys):
    assert run.main(["migrate"]) == 2
    assert "MONGO_URI is not set" in capsys.readouterr().err
