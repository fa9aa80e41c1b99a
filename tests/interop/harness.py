"""The independent partner (extrawest-ocpi) as a subprocess, for the interop suite.

Its pins (pydantic 1, fastapi 0.101) cannot share evroam's environment, so
it lives in its own virtual environment, built on first use under the repo
(`.interop-venv/`, gitignored) and reused while its marker matches the pins.
Where it cannot be built (no network to PyPI, no venv module), the tests skip
and say why.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

REPO = Path(__file__).resolve().parents[2]

REQUIREMENTS = ("extrawest-ocpi==2025.7.16", "uvicorn==0.55.0")
VENV = Path(os.environ.get("EVROAM_INTEROP_VENV", REPO / ".interop-venv"))
MARKER = VENV / ".evroam-interop"
PARTNER_DIR = Path(__file__).resolve().parent / "partner"
BUILD_TIMEOUT_S = 240  # per step; the tests' own timeout is 300 s
START_TIMEOUT_S = 30

_failure: str | None = None


def _python() -> Path:
    return VENV / "bin" / "python"


def _built() -> bool:
    return _python().exists() and MARKER.exists() and MARKER.read_text() == "\n".join(REQUIREMENTS)


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        tail = " | ".join([line for line in lines if line.startswith("ERROR")][-2:] or lines[-3:])
        raise RuntimeError(f"`{' '.join(cmd[:4])} …` exited {proc.returncode}: {tail}")


def interop_python() -> Path:
    """The interop venv's python, building the venv the first time; a skip
    with the reason where that is not possible."""
    global _failure
    if os.environ.get("EVROAM_INTEROP", "").lower() in ("0", "skip", "no"):
        pytest.skip("interop tests disabled by EVROAM_INTEROP")
    if _failure is not None:
        pytest.skip(_failure)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".interop-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest processes never build it at once
        if _built():
            return _python()
        try:
            shutil.rmtree(VENV, ignore_errors=True)
            _run(sys.executable, "-m", "venv", str(VENV))
            _run(str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            shutil.rmtree(VENV, ignore_errors=True)
            _failure = f"cannot build the interop venv with {' '.join(REQUIREMENTS)} at {VENV}: {exc}"
            pytest.skip(_failure)
        MARKER.write_text("\n".join(REQUIREMENTS))
        return _python()


class Partner:
    """One extrawest-ocpi process in one role, and its control API (ours).

    Started once per test session and role; `reset()` gives each test an
    empty partner with a fresh token A.
    """

    def __init__(self, python: Path, workdir: Path, role: str, country: str, party: str) -> None:
        self.python, self.workdir = python, workdir
        self.role, self.country, self.party = role, country, party
        self.log_path = workdir / f"partner-{role.lower()}.log"
        self.proc: subprocess.Popen | None = None
        self.base = self.versions_url = self.token_a = ""

    def start(self) -> Partner:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        with open(self.log_path, "wb") as log:
            # cwd: the library reads a `.env` file from the working directory.
            self.proc = subprocess.Popen(
                [str(self.python), str(PARTNER_DIR / "app.py"), "--role", self.role, "--country", self.country,
                 "--party", self.party], cwd=self.workdir, env=env, stdout=subprocess.PIPE, stderr=log)
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        try:
            hello = json.loads(self.proc.stdout.readline() if ready else b"")
        except ValueError:
            self.stop()
            raise RuntimeError(f"the partner did not start: {self.log()[-2000:]}") from None
        self.base = f"http://127.0.0.1:{hello['port']}"
        self.versions_url, self.token_a = hello["versions_url"], hello["token_a"]
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    async def reset(self) -> Partner:
        """Forget every peer and object; a new token A."""
        self.token_a = (await self.control("POST", "reset"))["token_a"]
        return self

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession() as s:
            async with s.request(method, f"{self.base}/control/{path}", json=body) as r:
                data = await r.json(content_type=None)
                if r.status != 200:
                    raise AssertionError(f"partner control {method} {path}: HTTP {r.status} {data}")
                return data

    async def state(self) -> dict:
        return await self.control("GET", "state")

    async def seed(self, module: str, objects: list[dict]) -> None:
        await self.control("POST", f"objects/{module}", objects)

    async def push(self, module: str, object_id: str) -> dict:
        """The library's own push of one of the partner's objects to evroam:
        its single receiver's HTTP status and reply (headers for CDRs)."""
        result = await self.control("POST", f"push/{module}/{object_id}")
        [reply] = result["receiver_responses"]
        return reply
