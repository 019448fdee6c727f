"""The bare FastAPI baseline: a POST that reads its body and answers 202, and nothing else."""

from __future__ import annotations

import itertools

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
_numbers = itertools.count()


@app.post("/concerns")
async def accept(request: Request) -> JSONResponse:
    """Answer as intake does (202 and a reference) without storing or publishing anything."""
    await request.body()
    return JSONResponse({"reference": f"BARE-{next(_numbers)}"}, status_code=202)
