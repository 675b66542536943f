"""GET / (the web page) and GET /ui-config: open to anyone, since the page holds no data; its script sends the key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from convoflow.api.deps import SettingsDep
from convoflow.web import STATIC_DIR

router = APIRouter(tags=["web"], include_in_schema=False)


@router.get("/", response_class=FileResponse)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/ui-config")
async def ui_config(settings: SettingsDep) -> dict[str, str]:
    """What the page cannot guess: where browsers reach Flower (empty: port 5555 of the page's host)."""
    return {"flower_url": settings.flower_public_url}
