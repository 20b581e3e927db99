"""A Python flow for scenarios/api_flow.yaml: `async def checkout(user)`.

Every `user.request` (and get/post/put/delete) is timed and recorded under its name exactly
like a YAML step; an exception fails this iteration only.
"""


async def checkout(user):
    name = f"user{user.id % 200}"
    login = await user.post("/api/login", json={"user": name, "password": f"pw-{name}"},
                            name="login", check={"status": 200})
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    created = await user.post("/api/items", json={"name": f"order-{user.iteration}",
                                                  "price": 12.5},
                              headers=auth, name="create item", check={"status": 201})
    item_id = created.json()["id"]
    await user.think(0.005)
    await user.get(f"/api/items/{item_id}", headers=auth, name="item",
                   check={"status": 200})
    await user.delete(f"/api/items/{item_id}", headers=auth, name="delete item",
                      check={"status": 204})
