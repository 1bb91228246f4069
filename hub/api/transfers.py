"""Large bodies in bounded memory: uploads spooled as they arrive, downloads served from a
verified copy on disk.

A model or checkpoint is up to ``max_artifact_bytes`` (2 GiB by default): neither direction
holds it in memory. An upload is hashed while it streams into a spool (8 MiB in memory, the
rest on disk in the hub's scratch folder), then sent to the object store; a download is
fetched into the scratch folder and verified against the catalog's sha256 *before* its
first byte is served, so a damaged object is a clear error, never a download that breaks off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from fedpark.hub.storage.objects import Spool


async def spooled_body(request: Request, spool: Spool) -> Spool:
    """Stream the request's body into ``spool`` (the caller closes it)."""
    async for chunk in request.stream():
        spool.write(chunk)
    return spool


def file_response(path: Path, media_type: str, filename: str | None = None) -> FileResponse:
    """Serve a verified copy and remove it once sent (or when the client goes away)."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else None
    return FileResponse(
        path,
        media_type=media_type,
        headers=headers,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
