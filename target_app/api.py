"""A small realistic API for flow demos and load tests: token login, items CRUD, cookie cart.

Every handler is cheap and never blocks: these endpoints measure the load generator and
its flows, not the server. All state lives in one bounded in-memory `ApiStore` per
process (uvicorn workers do not share it), so no run can grow the server without limit.
Rules (docs/flows.md): user `user<k>` (0 <= k < 1,000,000) logs in with password
`pw-user<k>`; seeded items 1..40 are read-only; at the item cap the oldest user-created
item is evicted; the oldest token or cart is forgotten beyond its cap; a cart holds item
ids and quantities only and shows each item as it is now (a deleted item leaves the cart).
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from functools import cache
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Header, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

USERS = 1_000_000  # user0 .. user999999
MAX_TOKENS = 100_000  # ~170 bytes each: ~17 MB when full
MAX_ITEMS = 10_000  # seeded + user-created
SEED_ITEMS = 40
MAX_CARTS = 10_000
MAX_CART_LINES = 20  # different items in one cart (10,000 full carts: ~20 MB)
MAX_LINE_QTY = 10_000  # of one item in one cart
MAX_LIST_LIMIT = 100
CART_COOKIE = "cart"

_USER_RE = re.compile(r"user(0|[1-9][0-9]*)")
_ADJECTIVES = ("red", "blue", "small", "large", "quiet", "fast", "wooden", "steel")
_NOUNS = ("chair", "lamp", "kettle", "teapot", "clock")


def _finite_or_text(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


class _JsonSafe422Route(APIRoute):
    """422 bodies that stay JSON: FastAPI echoes the bad input in its 422, and the NaN or
    inf that a body like `{"price": 1e999}` parses to made its encoder fail with a 500."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def json_safe_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = jsonable_encoder(exc.errors(), custom_encoder={float: _finite_or_text})
                return JSONResponse({"detail": errors}, status_code=422)

        return json_safe_handler


router = APIRouter(prefix="/api", tags=["api"], route_class=_JsonSafe422Route)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(max_length=64)
    password: str = Field(max_length=128)


class ItemIn(BaseModel):
    """The body of POST and PUT /api/items; unknown fields are refused (422) to catch typos."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    price: float = Field(ge=0, le=1_000_000, allow_inf_nan=False)


class CartAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1)
    qty: int = Field(default=1, ge=1, le=100)


def _bounded_put(table: dict, key: Any, value: Any, cap: int) -> None:
    """Insert `key`, first forgetting the oldest entries so `table` stays within `cap`."""
    while len(table) >= cap and key not in table:
        del table[next(iter(table))]
    table[key] = value


def seed_item(item_id: int) -> dict:
    """Seeded item `item_id` (deterministic, so every worker process holds the same ones)."""
    name = f"{_ADJECTIVES[item_id % len(_ADJECTIVES)]} {_NOUNS[item_id % len(_NOUNS)]} {item_id}"
    return {"id": item_id, "name": name, "price": (item_id * 37) % 100 + 0.99}


class ApiStore:
    """All of the API's state, each table bounded. Handlers never await between reading and
    writing it, so the single event loop needs no lock."""

    def __init__(
        self,
        *,
        max_tokens: int = MAX_TOKENS,
        max_items: int = MAX_ITEMS,
        seed_items: int = SEED_ITEMS,
        max_carts: int = MAX_CARTS,
        max_cart_lines: int = MAX_CART_LINES,
    ) -> None:
        if max_items <= seed_items:
            raise ValueError(f"max_items={max_items} leaves no room beside {seed_items} seeds")
        self.max_tokens = max_tokens
        self.max_items = max_items
        self.seed_items = seed_items
        self.max_carts = max_carts
        self.max_cart_lines = max_cart_lines
        self.tokens: dict[str, str] = {}  # token -> user, oldest first
        self.items: dict[int, dict] = {i: seed_item(i) for i in range(1, seed_items + 1)}
        self.created: dict[int, None] = {}  # user-created item ids, oldest first
        self.carts: dict[str, dict[int, int]] = {}  # cart id -> item id -> qty (compact)
        self.next_id = seed_items + 1

    def login(self, user: str) -> str:
        token = secrets.token_urlsafe(18)
        _bounded_put(self.tokens, token, user, self.max_tokens)
        return token

    def create_item(self, name: str, price: float) -> dict:
        """Ids are never reused; at the cap the oldest user-created item makes room."""
        if len(self.items) >= self.max_items:
            oldest = next(iter(self.created))
            del self.created[oldest]
            del self.items[oldest]
        item = {"id": self.next_id, "name": name, "price": price}
        self.items[self.next_id] = item
        self.created[self.next_id] = None
        self.next_id += 1
        return item

    def delete_item(self, item_id: int) -> None:
        del self.items[item_id]
        self.created.pop(item_id, None)

    def new_cart(self) -> str:
        cart_id = secrets.token_urlsafe(18)
        _bounded_put(self.carts, cart_id, {}, self.max_carts)
        return cart_id


@cache
def default_store() -> ApiStore:
    return ApiStore()


async def get_store() -> ApiStore:
    """The process's store; tests override this dependency with a fresh (small) one."""
    return default_store()


Store = Annotated[ApiStore, Depends(get_store)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    store: Store, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The user of the request's bearer token; 401 (JSON `detail`) without a known one."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing 'Authorization: Bearer <token>' header (POST /api/login)")
    user = store.tokens.get(token.strip())
    if user is None:
        raise _unauthorized("unknown or expired token (POST /api/login for a new one)")
    return user


User = Annotated[str, Depends(current_user)]


def _item_or_404(store: ApiStore, item_id: int) -> dict:
    item = store.items.get(item_id)
    if item is None:
        raise HTTPException(404, f"no item {item_id}")
    return item


def _writable_or_404(store: ApiStore, item_id: int) -> dict:
    item = _item_or_404(store, item_id)
    if item_id <= store.seed_items:
        raise HTTPException(403, f"item {item_id} is a seeded item and read-only")
    return item


@router.post("/login")
async def login(body: Login, store: Store) -> dict:
    """200 `{"token"}` for `user<k>` (0 <= k < 1,000,000) with password `pw-user<k>`."""
    match = _USER_RE.fullmatch(body.user)
    known = match is not None and int(match.group(1)) < USERS
    expected = ("pw-" + body.user).encode()
    if not (known and hmac.compare_digest(body.password.encode(), expected)):
        raise _unauthorized("invalid user or password (user<k> logs in with pw-user<k>)")
    return {"token": store.login(body.user)}


@router.get("/items")
async def list_items(
    store: Store,
    _user: User,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict:
    """A page of items in id order and the number of items in all."""
    page = list(islice(store.items.values(), offset, offset + limit))
    return {"items": page, "total": len(store.items)}


@router.post("/items", status_code=201)
async def create_item(body: ItemIn, store: Store, _user: User, response: Response) -> dict:
    item = store.create_item(body.name, body.price)
    response.headers["Location"] = f"/api/items/{item['id']}"
    return item


@router.get("/items/{item_id}")
async def get_item(item_id: int, store: Store, _user: User) -> dict:
    return _item_or_404(store, item_id)


@router.put("/items/{item_id}")
async def update_item(item_id: int, body: ItemIn, store: Store, _user: User) -> dict:
    item = _writable_or_404(store, item_id)
    item.update(name=body.name, price=body.price)
    return item


@router.delete("/items/{item_id}", status_code=204)
async def delete_item(item_id: int, store: Store, _user: User) -> Response:
    _writable_or_404(store, item_id)
    store.delete_item(item_id)
    return Response(status_code=204)


async def current_cart(
    store: Store, cart: Annotated[str | None, Cookie(alias=CART_COOKIE)] = None
) -> dict[int, int]:
    """The item id -> qty lines of the request's `cart` cookie; 401 without a known cart."""
    if not cart:
        raise HTTPException(401, "no 'cart' cookie (POST /api/cart/session first)")
    lines = store.carts.get(cart)
    if lines is None:
        raise HTTPException(401, "unknown or expired cart (POST /api/cart/session for a new one)")
    return lines


Cart = Annotated[dict[int, int], Depends(current_cart)]


def _cart_view(store: ApiStore, lines: dict[int, int]) -> dict:
    """The cart with each item's current name and price; items deleted since leave it."""
    items = []
    for item_id, qty in list(lines.items()):
        item = store.items.get(item_id)
        if item is None:
            del lines[item_id]
            continue
        items.append({"item_id": item_id, "name": item["name"], "price": item["price"],
                      "qty": qty})
    return {
        "items": items,
        "count": sum(line["qty"] for line in items),
        "total": round(sum(line["price"] * line["qty"] for line in items), 2),
    }


@router.post("/cart/session", status_code=201)
async def new_cart(store: Store, response: Response) -> dict:
    """A new empty cart; its id comes back in the `cart` cookie (and the body)."""
    cart_id = store.new_cart()
    response.set_cookie(CART_COOKIE, cart_id, httponly=True, samesite="lax", path="/")
    return {"cart": cart_id}


@router.post("/cart/items")
async def add_to_cart(body: CartAdd, store: Store, lines: Cart) -> dict:
    """Add `qty` of an item; the whole cart comes back."""
    _item_or_404(store, body.item_id)
    had = lines.get(body.item_id, 0)
    if not had and len(lines) >= store.max_cart_lines:
        raise HTTPException(409, f"cart full: at most {store.max_cart_lines} different items")
    if had + body.qty > MAX_LINE_QTY:
        raise HTTPException(409, f"at most {MAX_LINE_QTY} of one item in a cart")
    lines[body.item_id] = had + body.qty
    return _cart_view(store, lines)


@router.get("/cart")
async def get_cart(store: Store, lines: Cart) -> dict:
    """`items` (one line per item), `count` (total quantity) and `total` (sum of price*qty)."""
    return _cart_view(store, lines)
