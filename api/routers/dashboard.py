"""The therapist dashboard: one static page that talks to the JSON API with the user's token."""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

_PAGE = files("api").joinpath("static/index.html")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    """Serve the dashboard page (all data comes from /api/v1 after login)."""
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))
