"""`deepnets serve`: a FastAPI app with one static page to browse every result and try every
trained run.

API (all JSON; every error is a 4xx with {"error": "one line"}):
  GET  /api/systems                      the systems table (published beside ours)
  GET  /api/claims                       the review's claims, each with its measured verdict
  GET  /api/runs                         the runs found, with the panels that serve each
  GET  /api/curves?run=ID                a run's metrics.jsonl records
  GET  /api/figures                      the figures drawn from the runs found
  GET  /api/figure?name=N&run=ID         one figure as PNG (X-Caption: which run and commit)
  POST /api/panel/{panel}/{action}?run=ID  a panel action: JSON in, JSON (or NDJSON stream) out
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from deepnets import DeepnetsError
from deepnets.serve.catalog import ModelCache, NotFound, RunCatalog
from deepnets.serve.inputs import MAX_BODY_BYTES, Inputs, TooLarge
from deepnets.serve.panels import PANELS, panels_for
from deepnets.serve.results_view import STATIC, FigureCache, curves, figure_choices

log = logging.getLogger("deepnets.serve")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())[:500]}, status_code=status)


class BodyLimit:
    """Refuse a request body over `limit` bytes (413), or one sent without a length (411),
    before any of it is read."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            problem = None
            if length is None:
                if headers.get(b"transfer-encoding"):
                    problem = (411, "send the body with a Content-Length")
            elif not length.isdigit():
                problem = (400, "Content-Length is not a number")
            elif int(length) > self.limit:
                problem = (413, f"the body is {int(length)} bytes; at most {self.limit}")
            if problem:
                await _error(*problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(runs: Path | str = "runs", cache_size: int = 4, figures: Path | None = None):
    """The app serving the runs under `runs`; figures are rendered into `figures` (a temporary
    folder by default)."""
    catalog = RunCatalog(runs)
    models = ModelCache(cache_size)
    figure_folder = figures or Path(tempfile.mkdtemp(prefix="deepnets-figures-"))
    figure_cache = FigureCache(figure_folder)
    panels = {p.name: p for p in PANELS}

    app = FastAPI(title="deepnets", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalog, app.state.models = catalog, models

    @app.exception_handler(NotFound)
    async def not_found(request, err):
        return _error(404, str(err))

    @app.exception_handler(TooLarge)
    async def too_large(request, err):
        return _error(413, str(err))

    @app.exception_handler(DeepnetsError)
    async def bad_request(request, err):
        return _error(400, str(err))

    @app.exception_handler(HTTPException)
    async def http_error(request, err):
        return _error(err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def internal(request, err):
        log.exception("unexpected error")
        return _error(500, f"internal error ({type(err).__name__}); the server keeps serving")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/data.js", include_in_schema=False)
    def no_export():
        return Response("", media_type="text/javascript")  # the exported page's data, served empty

    @app.get("/api/systems")
    def systems():
        from deepnets.results import systems_records

        return {"systems": systems_records()}

    @app.get("/api/claims")
    def claims():
        from deepnets.claims import claims_records

        return {"claims": claims_records()}

    @app.get("/api/runs")
    def run_list():
        records = []
        for info in catalog.scan().values():
            shown = [p.name for p in panels_for(info.experiment)] if info.finished else []
            records.append({**info.record(), "panels": shown})
        return {"runs": records, "panels": {p.name: p.title for p in PANELS}}

    @app.get("/api/curves")
    def run_curves(run: str | None = None):
        return curves(catalog.find(run))

    @app.get("/api/figures")
    def figure_list():
        return {"figures": figure_choices(catalog)}

    @app.get("/api/figure")
    async def figure(name: str = "", run: str | None = None):
        info = catalog.find(run)
        file, caption = await run_in_threadpool(figure_cache.get, name, info)
        return FileResponse(file, media_type="image/png", headers={"X-Caption": caption})

    @app.post("/api/panel/{panel_name}/{action_name}")
    async def act(panel_name: str, action_name: str, request: Request, run: str | None = None):
        panel = panels.get(panel_name)
        if panel is None:
            raise NotFound(f"unknown panel {panel_name[:40]!r}; panels: {', '.join(panels)}")
        action = panel.actions.get(action_name)
        if action is None:
            raise NotFound(f"panel {panel.name} has no action {action_name[:40]!r}")
        info = catalog.find(run)
        if info.experiment not in panel.experiments:
            raise DeepnetsError(f"the {panel.name} panel does not serve {info.experiment} runs")
        if not info.finished:
            raise DeepnetsError(f"run {info.id} has not finished training")
        inputs = await _read_inputs(request, action.body)
        loaded = await run_in_threadpool(
            models.get, (panel.name, info.id), lambda: panel.load(info.path)
        )
        result = await run_in_threadpool(action.run, loaded, inputs)
        if isinstance(result, dict):
            return result
        return StreamingResponse(_ndjson(result), media_type="application/x-ndjson")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return BodyLimit(app, MAX_BODY_BYTES)


async def _read_inputs(request: Request, body: str) -> Inputs:
    if body == "json":
        return Inputs.from_json(await request.body())
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        raise DeepnetsError("send the file as multipart/form-data with the field 'file'")
    try:
        form = await request.form(max_files=1, max_fields=20)
    except Exception as err:  # python-multipart's errors for a malformed body
        raise DeepnetsError(f"malformed multipart body: {err}") from None
    fields, upload = {}, None
    for key, value in form.multi_items():
        if hasattr(value, "read"):
            upload = await value.read() if key == "file" else upload
        else:
            fields[key] = value
    return Inputs(fields, upload)


def _ndjson(items: Iterator[dict]) -> Iterator[bytes]:
    try:
        for item in items:
            yield (json.dumps(item) + "\n").encode()
    except DeepnetsError as err:
        yield (json.dumps({"error": str(err)}) + "\n").encode()


def serve(runs: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    import torch
    import uvicorn

    torch.set_num_threads(1)  # requests run side by side; one thread each uses the cores best
    print(f"serving the runs under {Path(runs).resolve()} at http://{host}:{port}/")
    uvicorn.run(create_app(runs), host=host, port=port, log_level="warning")
