"""Real `evroam` processes (serve, worker, demo) for tests of how a node
behaves as a service: their output is read line by line as it comes, so a
test can wait for a log event with a deadline instead of sleeping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.nodes import bind_loopback

EVROAM = [sys.executable, "-m", "evroam"]


def evroam(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one `evroam` command to its end, output captured (so not a terminal);
    its exit code is the caller's to check."""
    return subprocess.run([*EVROAM, *args], capture_output=True, text=True, timeout=timeout,
                          env=_env(env), cwd=cwd)


def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`evroam` ARGS…, failing the test with its output when it exits non-zero."""
    proc = evroam(*args, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"evroam {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # rich would take the width from it
    return {**env, **(extra or {})}


def free_port() -> int:
    """A loopback port free now, for a process that binds it itself (it may
    be taken before then; a node in this process binds port 0 instead)."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    sock.close()
    return port


def init_home(home: Path, *extra: str, role: str = "CPO", country: str = "NL", party: str = "CPO",
              port: int = 0) -> Path:
    proc = evroam("init", "--home", str(home), "--country", country, "--party", party, "--role", role,
                  "--public-url", f"http://127.0.0.1:{port or 1}", "--port", str(port), *extra)
    assert proc.returncode == 0, proc.stderr
    return home


# Retries fast enough for a test to see a partner come back within seconds.
FAST_RETRY = {"delivery_backoff_s": 0.02, "delivery_backoff_cap_s": 0.3, "delivery_max_attempts": 10_000}


def process_home(home: Path, port: int, db: str, *, role: str, country: str, party: str) -> Path:
    """The home of a node run as its own `evroam serve` process (to be
    SIGKILLed): `evroam init` on `db`, with FAST_RETRY in its config."""
    from evroam.config import NodeConfig

    init_home(home, "--db", db, role=role, country=country, party=party, port=port)
    cfg = NodeConfig.load(home)
    for k, v in FAST_RETRY.items():
        setattr(cfg, k, v)
    cfg.save()
    return home


def serve_process(home: Path, port: int, stderr: Path) -> subprocess.Popen:
    """`evroam serve --home HOME` as a process of its own (to be SIGKILLed),
    once it answers on `port`; its stderr appended to `stderr`."""
    p = subprocess.Popen([sys.executable, "-m", "evroam", "serve", "--home", str(home)],
                         stdout=subprocess.DEVNULL, stderr=open(stderr, "a"))
    wait_http(f"http://127.0.0.1:{port}/ocpi/versions")
    return p


def terminated(proc: subprocess.Popen, stderr: Path, deadline_s: float = 20.0) -> int:
    """SIGTERM a served process and wait for its exit; if it takes longer than
    `deadline_s`, fail with the end of its log (node.stop_slow names the stage)."""
    proc.terminate()
    try:
        return proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        tail = stderr.read_text(errors="replace").splitlines()[-30:]
        raise AssertionError(f"serve did not exit {deadline_s}s after SIGTERM; its log ends:\n" + "\n".join(tail)) from None


def wait_http(url: str, deadline_s: float = 20.0) -> None:
    """Until `url` answers at all (a 401 without a token counts: it is up)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not come up in {deadline_s}s") from None
            time.sleep(0.05)
        else:
            return


class Service:
    """A long-running `evroam` process; every line it writes is kept in `lines`
    as (stream, text)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([*EVROAM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=_env(env))
        self.lines: list[tuple[str, str]] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(name, stream), daemon=True)
                         for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))]
        for t in self._readers:
            t.start()

    def _read(self, name: str, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.lines.append((name, line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def events(self) -> list[dict]:
        """The JSON log lines so far (lines that are not JSON are skipped here;
        tests that require every line to be JSON check `lines`)."""
        out = []
        for _, text in list(self.lines):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def wait_event(self, event: str, timeout: float = 60.0, **fields: Any) -> dict:
        """The first log event named `event` (with these field values)."""
        def found() -> dict | None:
            for e in self.events():
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items()):
                    return e
            return None

        deadline = time.monotonic() + timeout
        with self._changed:
            while (hit := found()) is None:
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._readers):
                    raise AssertionError(f"exited {self.proc.returncode} before {event}:\n{self.text()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {event} within {timeout}s:\n{self.text()}")
                self._changed.wait(left)
        return hit

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig`, wait for the exit and for the last of the output."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout)
        for t in self._readers:
            t.join(timeout)
        return code

    def text(self) -> str:
        return "\n".join(f"{name}: {text}" for name, text in self.lines)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.wait(30)


def serve(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Service, str]:
    """`evroam serve` on a free port; returns it once it listens, and its base URL."""
    svc = Service("serve", "--home", str(home), "--port", "0", *args, env=env)
    try:
        started = svc.wait_event("serve.started")
    except BaseException:
        svc.__exit__()
        raise
    return svc, f"http://127.0.0.1:{started['port']}"


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """GET url; (HTTP status, JSON body)."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")

