"""The target app's /api (target_app/api.py): token login, items CRUD, cookie cart, bounds.

In-process through httpx's ASGITransport (no lifespan, no network); each test gets a fresh
store through the `get_store` dependency, small where a test reaches a cap."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st

import target_app.api as api
from target_app.api import ApiStore, get_store, seed_item
from target_app.main import app

Send = Callable[..., httpx.Response]


@pytest.fixture
def store(request: pytest.FixtureRequest) -> ApiStore:
    """A fresh store; `indirect` parametrization passes its caps."""
    return ApiStore(**getattr(request, "param", {}))


@pytest.fixture
def send(store: ApiStore) -> Iterator[Send]:
    """A blocking `send(method, url, **kw)` to the whole app, with `store` as the API's state;
    the client keeps cookies like a browser (and like a flow's virtual user)."""

    async def the_store() -> ApiStore:
        return store

    app.dependency_overrides[get_store] = the_store
    with asyncio.Runner() as runner:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        try:
            yield lambda method, url, **kw: runner.run(client.request(method, url, **kw))
        finally:
            runner.run(client.aclose())
            app.dependency_overrides.pop(get_store, None)


def login(send: Send, user: str = "user7") -> dict[str, str]:
    response = send("POST", "/api/login", json={"user": user, "password": "pw-" + user})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def create(send: Send, auth: dict, name: str = "new", price: float = 1.25) -> dict:
    response = send("POST", "/api/items", json={"name": name, "price": price}, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


# -- login --------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["user0", "user7", "user999999"])
def test_login_gives_an_opaque_token(send: Send, user: str) -> None:
    first = send("POST", "/api/login", json={"user": user, "password": "pw-" + user})
    second = send("POST", "/api/login", json={"user": user, "password": "pw-" + user})
    assert first.status_code == second.status_code == 200
    assert list(first.json()) == ["token"]
    token = first.json()["token"]
    assert len(token) >= 20 and user not in token
    assert token != second.json()["token"]


@pytest.mark.parametrize(
    ("user", "password"),
    [("user7", "pw-user8"), ("user7", ""), ("user7", "PW-user7"), ("user1000000", "pw-user1000000"),
     ("user01", "pw-user01"), ("admin", "pw-admin"), ("user", "pw-user"), ("user-1", "pw-user-1"),
     ("user7", "pw-üser7"), ("üser7", "pw-üser7"), ("user١", "pw-user١"),
     ("user7\n", "pw-user7\n")],
)
def test_login_refuses_bad_credentials_with_401(send: Send, user: str, password: str) -> None:
    response = send("POST", "/api/login", json={"user": user, "password": password})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "pw-user<k>" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [{}, {"user": "user1"}, {"user": "user1", "password": "pw-user1", "extra": 1},
     {"user": 1, "password": "pw-1"}, {"user": "u" * 65, "password": "x"}],
)
def test_login_body_is_validated_422(send: Send, body: dict) -> None:
    assert send("POST", "/api/login", json=body).status_code == 422


# -- auth on items ------------------------------------------------------------------------

ITEM_CALLS = [("GET", "/api/items"), ("POST", "/api/items"), ("GET", "/api/items/1"),
              ("PUT", "/api/items/41"), ("DELETE", "/api/items/41")]


@pytest.mark.parametrize(("method", "path"), ITEM_CALLS)
@pytest.mark.parametrize(
    ("authorization", "says"),
    [(None, "missing"), ("Bearer", "missing"), ("Bearer   ", "missing"),
     ("Basic dXNlcjpwdw==", "missing"), ("Bearer not-a-token", "unknown")],
)
def test_items_need_a_known_bearer_token(
    send: Send, method: str, path: str, authorization: str | None, says: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = send(method, path, headers=headers, json={"name": "a", "price": 1})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert says in response.json()["detail"]


def test_the_scheme_is_case_insensitive(send: Send) -> None:
    token = login(send)["Authorization"].split()[1]
    assert send("GET", "/api/items", headers={"Authorization": f"bearer {token}"}).is_success


def test_401_comes_before_body_validation(send: Send) -> None:
    """An anonymous client learns nothing about the body rules."""
    assert send("POST", "/api/items", json={"price": "x"}).status_code == 401


# -- items --------------------------------------------------------------------------------


def test_list_is_seeded_and_pages_cover_every_item_once(send: Send) -> None:
    auth = login(send)
    first = send("GET", "/api/items", headers=auth).json()
    assert first["total"] == api.SEED_ITEMS == 40
    assert len(first["items"]) == 20
    assert set(first["items"][0]) == {"id", "name", "price"}
    seen = []
    for offset in range(0, 50, 7):
        page = send("GET", f"/api/items?limit=7&offset={offset}", headers=auth).json()
        seen += [item["id"] for item in page["items"]]
    assert seen == list(range(1, 41))
    assert send("GET", "/api/items?offset=40", headers=auth).json() == {"items": [], "total": 40}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "offset=-1"])
def test_list_parameters_are_validated_422(send: Send, query: str) -> None:
    assert send("GET", f"/api/items?{query}", headers=login(send)).status_code == 422


def test_create_get_update_delete(send: Send) -> None:
    auth = login(send)
    response = send("POST", "/api/items", json={"name": "mug", "price": 4.5}, headers=auth)
    assert response.status_code == 201
    item = response.json()
    assert item == {"id": 41, "name": "mug", "price": 4.5}
    assert response.headers["Location"] == "/api/items/41"
    assert send("GET", "/api/items/41", headers=auth).json() == item
    listed = send("GET", "/api/items?limit=100", headers=auth).json()
    assert listed["total"] == 41 and listed["items"][-1] == item

    updated = send("PUT", "/api/items/41", json={"name": "big mug", "price": 6}, headers=auth)
    assert updated.status_code == 200
    assert updated.json() == {"id": 41, "name": "big mug", "price": 6.0}
    assert send("GET", "/api/items/41", headers=auth).json() == updated.json()

    deleted = send("DELETE", "/api/items/41", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert send("GET", "/api/items/41", headers=auth).status_code == 404
    assert send("DELETE", "/api/items/41", headers=auth).status_code == 404
    assert send("GET", "/api/items", headers=auth).json()["total"] == 40
    assert create(send, auth)["id"] == 42  # ids are never reused


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PUT", {"name": "a", "price": 1}),
                                              ("DELETE", None)])
def test_unknown_item_is_404(send: Send, method: str, body: dict | None) -> None:
    response = send(method, "/api/items/999", json=body, headers=login(send))
    assert response.status_code == 404
    assert response.json() == {"detail": "no item 999"}


@pytest.mark.parametrize("item_id", ["abc", "1.5"])
def test_item_id_must_be_an_integer(send: Send, item_id: str) -> None:
    assert send("GET", f"/api/items/{item_id}", headers=login(send)).status_code == 422


@pytest.mark.parametrize(("method", "body"), [("PUT", {"name": "a", "price": 1}),
                                              ("DELETE", None)])
def test_seeded_items_are_read_only(send: Send, method: str, body: dict | None) -> None:
    auth = login(send)
    before = send("GET", "/api/items/3", headers=auth).json()
    response = send(method, "/api/items/3", json=body, headers=auth)
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert send("GET", "/api/items/3", headers=auth).json() == before == seed_item(3)


@pytest.mark.parametrize(
    "content",
    [b"{}", b'{"name": "a"}', b'{"price": 1}', b'{"name": "", "price": 1}',
     b'{"name": "' + b"n" * 101 + b'", "price": 1}', b'{"name": "a", "price": -0.01}',
     b'{"name": "a", "price": 1000001}', b'{"name": "a", "price": "cheap"}',
     b'{"name": "a", "price": 1e999}', b'{"name": "a", "price": NaN}',
     b'{"name": "a", "price": 1, "colour": "red"}', b"not json", b"[]"],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/items"), ("PUT", "/api/items/41")])
def test_item_bodies_are_validated_422(
    send: Send, content: bytes, method: str, path: str
) -> None:
    auth = login(send)
    create(send, auth)
    headers = {**auth, "Content-Type": "application/json"}
    response = send(method, path, content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert send("GET", "/api/items/41", headers=auth).json()["name"] == "new"
    assert send("GET", "/api/items", headers=auth).json()["total"] == 41


# -- bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize("store", [{"max_items": 43}], indirect=True)
def test_at_the_item_cap_the_oldest_created_item_is_evicted(send: Send) -> None:
    auth = login(send)
    ids = [create(send, auth, name=f"n{k}")["id"] for k in range(5)]
    assert ids == [41, 42, 43, 44, 45]
    listed = send("GET", "/api/items?limit=100", headers=auth).json()
    assert listed["total"] == 43
    assert [item["id"] for item in listed["items"]] == [*range(1, 41), 43, 44, 45]
    assert send("GET", "/api/items/41", headers=auth).status_code == 404
    assert send("GET", "/api/items/1", headers=auth).json() == seed_item(1)


@pytest.mark.parametrize("store", [{"max_tokens": 2}], indirect=True)
def test_beyond_the_token_cap_the_oldest_token_is_forgotten(send: Send) -> None:
    tokens = [login(send, f"user{k}") for k in range(3)]
    statuses = [send("GET", "/api/items", headers=auth).status_code for auth in tokens]
    assert statuses == [401, 200, 200]


def test_a_store_needs_room_beside_its_seeds() -> None:
    with pytest.raises(ValueError, match="no room"):
        ApiStore(max_items=40, seed_items=40)


@given(st.lists(st.one_of(st.just("create"), st.integers(1, 60)), max_size=60),
       st.integers(6, 12))
def test_items_stay_bounded_and_seeds_stay(ops: list, max_items: int) -> None:
    """Any mix of creates and deletes (of ids that may or may not exist) keeps the cap,
    keeps every seed, lists in id order and never reuses an id."""
    store = ApiStore(max_items=max_items, seed_items=5)
    handed_out = []
    for op in ops:
        if op == "create":
            handed_out.append(store.create_item("x", 1.0)["id"])
        elif op > 5 and op in store.items:
            store.delete_item(op)
        assert len(store.items) <= max_items
        assert list(store.items) == sorted(store.items)
        assert set(range(1, 6)) <= set(store.items)
        assert set(store.created) == set(store.items) - set(range(1, 6))
    assert handed_out == sorted(set(handed_out))


def test_seeded_items_are_the_same_in_every_process() -> None:
    """Seeds are computed, not random: uvicorn workers (separate stores) agree on them."""
    assert ApiStore().items == ApiStore().items
    assert seed_item(2) == {"id": 2, "name": "small kettle 2", "price": 74.99}


# -- cart ---------------------------------------------------------------------------------


def test_cart_cookie_flow(send: Send, store: ApiStore) -> None:
    assert send("GET", "/api/cart").status_code == 401
    assert send("POST", "/api/cart/items", json={"item_id": 2}).status_code == 401

    session = send("POST", "/api/cart/session")
    assert session.status_code == 201
    cookie = session.headers["set-cookie"]
    cart_id = session.json()["cart"]
    assert cookie.startswith(f"cart={cart_id};")
    assert "HttpOnly" in cookie and "Path=/" in cookie
    assert cart_id in store.carts

    assert send("GET", "/api/cart").json() == {"items": [], "count": 0, "total": 0}
    send("POST", "/api/cart/items", json={"item_id": 2, "qty": 2})
    added = send("POST", "/api/cart/items", json={"item_id": 2})
    assert added.status_code == 200
    send("POST", "/api/cart/items", json={"item_id": 3, "qty": 1})
    cart = send("GET", "/api/cart").json()
    assert cart == {
        "items": [{"item_id": 2, "name": "small kettle 2", "price": 74.99, "qty": 3},
                  {"item_id": 3, "name": "large teapot 3", "price": 11.99, "qty": 1}],
        "count": 4,
        "total": 236.96,
    }
    assert added.json()["count"] == 3


def test_cart_needs_no_token_and_sessions_are_separate(send: Send) -> None:
    send("POST", "/api/cart/session")
    send("POST", "/api/cart/items", json={"item_id": 5})
    send("POST", "/api/cart/session")  # a new session replaces the cookie: a new empty cart
    assert send("GET", "/api/cart").json()["count"] == 0


def test_cart_shows_items_as_they_are_now(send: Send) -> None:
    """A cart keeps ids and quantities only: a changed price shows, a deleted item leaves."""
    auth = login(send)
    kept, dropped = create(send, auth, "kept", 2.0), create(send, auth, "dropped", 3.0)
    send("POST", "/api/cart/session")
    for item in (kept, dropped):
        send("POST", "/api/cart/items", json={"item_id": item["id"], "qty": 2})
    send("PUT", f"/api/items/{kept['id']}", json={"name": "kept", "price": 2.5}, headers=auth)
    send("DELETE", f"/api/items/{dropped['id']}", headers=auth)
    assert send("GET", "/api/cart").json() == {
        "items": [{"item_id": kept["id"], "name": "kept", "price": 2.5, "qty": 2}],
        "count": 2, "total": 5.0,
    }


def test_cart_unknown_cookie_is_401(send: Send) -> None:
    response = send("GET", "/api/cart", headers={"Cookie": "cart=forged"})
    assert response.status_code == 401
    assert "unknown" in response.json()["detail"]


def test_cart_unknown_item_is_404(send: Send) -> None:
    send("POST", "/api/cart/session")
    response = send("POST", "/api/cart/items", json={"item_id": 999})
    assert response.status_code == 404
    assert send("GET", "/api/cart").json()["items"] == []


@pytest.mark.parametrize(
    "body", [{}, {"item_id": 0}, {"item_id": 2, "qty": 0}, {"item_id": 2, "qty": 101},
             {"item_id": "two"}, {"item_id": 2, "qty": 1, "note": "x"}])
def test_cart_add_is_validated_422(send: Send, body: dict) -> None:
    send("POST", "/api/cart/session")
    assert send("POST", "/api/cart/items", json=body).status_code == 422


@pytest.mark.parametrize("store", [{"max_carts": 2}], indirect=True)
def test_beyond_the_cart_cap_the_oldest_cart_is_forgotten(send: Send) -> None:
    carts = [send("POST", "/api/cart/session").json()["cart"] for _ in range(3)]
    statuses = [send("GET", "/api/cart", headers={"Cookie": f"cart={cart}"}).status_code
                for cart in carts]
    assert statuses == [401, 200, 200]


@pytest.mark.parametrize("store", [{"max_cart_lines": 2}], indirect=True)
def test_a_full_cart_refuses_a_new_item_with_409(send: Send) -> None:
    send("POST", "/api/cart/session")
    for item_id in (1, 2):
        assert send("POST", "/api/cart/items", json={"item_id": item_id}).status_code == 200
    response = send("POST", "/api/cart/items", json={"item_id": 3})
    assert response.status_code == 409
    assert "at most 2 different items" in response.json()["detail"]
    assert send("POST", "/api/cart/items", json={"item_id": 2}).status_code == 200  # not new


def test_one_line_quantity_is_capped_409(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "MAX_LINE_QTY", 5)
    send("POST", "/api/cart/session")
    assert send("POST", "/api/cart/items", json={"item_id": 1, "qty": 5}).status_code == 200
    assert send("POST", "/api/cart/items", json={"item_id": 1, "qty": 1}).status_code == 409
    assert send("GET", "/api/cart").json()["count"] == 5


# -- shape --------------------------------------------------------------------------------


def test_every_api_handler_and_dependency_is_async() -> None:
    """Sync handlers or dependencies would run in the thread pool: not cheap under load."""
    routes = [route for route in api.router.routes if isinstance(route, APIRoute)]
    assert {(route.path, *sorted(route.methods)) for route in routes} == {
        ("/api/login", "POST"), ("/api/items", "GET"), ("/api/items", "POST"),
        ("/api/items/{item_id}", "GET"), ("/api/items/{item_id}", "PUT"),
        ("/api/items/{item_id}", "DELETE"), ("/api/cart/session", "POST"),
        ("/api/cart/items", "POST"), ("/api/cart", "GET"),
    }

    def calls(dependant) -> Iterator:
        yield dependant.call
        for sub in dependant.dependencies:
            yield from calls(sub)

    for route in routes:
        for call in calls(route.dependant):
            assert inspect.iscoroutinefunction(call), (route.path, call)



def test_the_app_serves_and_documents_the_api(send: Send) -> None:
    paths = send("GET", "/openapi.json").json()["paths"]
    assert {"/api/login", "/api/items", "/api/items/{item_id}", "/api/cart"} <= set(paths)
