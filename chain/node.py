"""The embedded local chain: an anvil node whose state survives restarts (including ``kill -9``).

anvil comes from the npm package ``@foundry-rs/anvil`` (its native binary lives in
``node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil``). We start it with:

- ``--state FILE --state-interval 1``: state is written on exit *and* every second, so a SIGKILL loses at
  most the last second; the gateway's reconciler re-anchors anything the chain forgot.
- Durable confirmation (:class:`StatePersister`): a write the gateway acknowledges must survive a SIGKILL, so
  after its receipt the gateway asks the node for its state (``anvil_dumpState``) and writes it atomically
  (temporary file, fsync, rename) to ``anvil-state.confirmed.json``; only then is the write confirmed. anvil's
  own periodic file can be cut short by a kill mid-write: at start the newer valid one of the two is loaded.
- ``--hardfork prague``: the same EVM rules as the in-process test EVM (the contracts are compiled for it).
- ``--max-persisted-states 0`` and a ``--cache-path`` inside our data dir: anvil otherwise writes a state
  snapshot per block under ``~/.foundry`` and never deletes it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from chain.errors import ChainError

__all__ = ["DEV_MNEMONIC", "LocalNode", "NodeStatus", "StatePersister", "find_anvil", "rpc_chain_id"]

#: anvil's well-known development mnemonic: its accounts are public knowledge, dev chains only.
DEV_MNEMONIC = "test test test test test test test test test test test junk"

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_ANVIL_IN_NODE_MODULES = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")


class LocalNodeError(ChainError):
    """The local node could not be started, found or stopped."""


def find_anvil() -> Path:
    """Locate the anvil binary: ``QCN_ANVIL_BIN``, then the project's node_modules, then ``PATH``."""
    candidates: list[Path] = []
    if env := os.environ.get("QCN_ANVIL_BIN"):
        candidates.append(Path(env))
    candidates += [Path.cwd() / _ANVIL_IN_NODE_MODULES, _PROJECT_ROOT / _ANVIL_IN_NODE_MODULES]
    if found := shutil.which("anvil"):
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise LocalNodeError(
        "anvil not found: run `npm ci` in the project root (it installs @foundry-rs/anvil) "
        "or set QCN_ANVIL_BIN to the binary"
    )


def rpc_chain_id(url: str, timeout: float = 1.0) -> int | None:
    """Return the chain id answered at ``url``, or None when nothing answers JSON-RPC there."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL is our own config
            return int(json.loads(resp.read())["result"], 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return None


def _rpc(url: str, method: str, params: list[object], timeout: float = 30.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URL is our own config
            answer = json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise LocalNodeError(f"{method} on {url} failed: {exc}") from exc
    if "error" in answer:
        raise LocalNodeError(f"{method} on {url} failed: {answer['error']}")
    return answer["result"]


def _state_block(path: Path) -> int | None:
    """The newest block number a state file holds, or None when it is missing or unreadable."""
    try:
        state = json.loads(path.read_bytes())
        block = state.get("best_block_number") or (state.get("block") or {}).get("number")
        if block is None:
            return None
        return int(block, 16) if isinstance(block, str) else int(block)
    except (OSError, ValueError, TypeError, AttributeError):
        return None


class StatePersister:
    """Makes the embedded node's state durable on demand (see the module docstring).

    :meth:`ensure` returns once a state holding block ``block`` (or newer) is on disk; concurrent callers
    share one dump (a dump covers every block mined before it).
    """

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = Path(path)
        self._lock = threading.Lock()
        self.persisted_block = -1
        self.dumps = 0

    def ensure(self, block: int) -> int:
        """Persist the node's state unless a dump already covers ``block``; returns the persisted block."""
        if self.persisted_block >= block:
            return self.persisted_block
        with self._lock:
            if self.persisted_block >= block:
                return self.persisted_block
            head = int(str(_rpc(self.url, "eth_blockNumber", [])), 16)
            raw = bytes.fromhex(str(_rpc(self.url, "anvil_dumpState", [])).removeprefix("0x"))
            data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            tmp = self.path.with_suffix(".tmp")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            with contextlib.suppress(OSError):  # the rename itself is durable once the directory is synced
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            self.persisted_block = max(head, block)
            self.dumps += 1
            return self.persisted_block


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class NodeStatus:
    running: bool
    pid: int | None
    url: str
    chain_id: int | None
    state_file: Path
    state_bytes: int


class LocalNode:
    """One anvil process bound to a data directory (state file, pid file, log, cache)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8545,
        chain_id: int = 31337,
        state_interval_s: int = 1,
        block_time_s: float | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.chain_id = chain_id
        self.state_interval_s = state_interval_s
        self.block_time_s = block_time_s

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "anvil-state.json"

    @property
    def confirmed_state_file(self) -> Path:
        """The state the gateway persisted after its confirmed writes (:class:`StatePersister`)."""
        return self.data_dir / "anvil-state.confirmed.json"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "anvil.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "anvil.log"

    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def command(self) -> list[str]:
        cmd = [
            str(find_anvil()),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--hardfork",
            "prague",
            "--mnemonic",
            DEV_MNEMONIC,
            "--accounts",
            "10",
            "--balance",
            "1000000",
            "--state",
            str(self.state_file),
            "--state-interval",
            str(self.state_interval_s),
            "--max-persisted-states",
            "0",
            "--cache-path",
            str(self.data_dir / "cache"),
            "--silent",
        ]
        if self.block_time_s:
            cmd += ["--block-time", str(self.block_time_s)]
        return cmd

    def status(self) -> NodeStatus:
        pid = self._read_pid()
        chain_id = rpc_chain_id(self.url) if pid else None
        size = self.state_file.stat().st_size if self.state_file.exists() else 0
        return NodeStatus(pid is not None and chain_id is not None, pid, self.url, chain_id, self.state_file, size)

    def start(self, *, timeout: float = 20.0) -> NodeStatus:
        """Start the node in the background (idempotent: an already running node of ours is reused)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid = self._read_pid()
        if pid is not None:
            self.wait_ready(timeout)
            return self.status()
        if _port_in_use(self.host, self.port):
            found = rpc_chain_id(self.url)
            what = f"a JSON-RPC node with chain id {found}" if found else "another program"
            raise LocalNodeError(
                f"port {self.port} on {self.host} is used by {what} not started from {self.data_dir}; "
                "stop it, or choose another port with --port / QCN_RPC_URL"
            )
        self._drop_corrupt_state()
        log = self.log_file.open("ab")
        proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self.pid_file.write_text(str(proc.pid))
        try:
            self.wait_ready(timeout, proc=proc)
        except LocalNodeError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        return self.status()

    def _drop_corrupt_state(self) -> None:
        """Load the newest valid state: anvil's periodic file, or the one persisted for confirmed writes when
        that is newer or the periodic file was cut short by a crash mid-write (kept aside, not deleted)."""
        periodic = _state_block(self.state_file) if self.state_file.exists() else None
        if self.state_file.exists() and self.state_file.stat().st_size and periodic is None:
            broken = self.state_file.with_suffix(f".corrupt-{int(time.time())}.json")
            self.state_file.rename(broken)
        confirmed = _state_block(self.confirmed_state_file)
        if confirmed is not None and (periodic is None or confirmed > periodic):
            tmp = self.state_file.with_suffix(".restore")
            shutil.copyfile(self.confirmed_state_file, tmp)
            os.replace(tmp, self.state_file)

    def wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rpc_chain_id(self.url, timeout=0.5) is not None:
                return
            if proc is not None and proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
                raise LocalNodeError(f"anvil exited with code {proc.returncode} while starting: {tail.strip()}")
            time.sleep(0.05)
        raise LocalNodeError(f"anvil did not answer on {self.url} within {timeout:.0f} s (log: {self.log_file})")

    def stop(self, *, timeout: float = 15.0, hard: bool = False) -> bool:
        """Stop the node; SIGTERM lets anvil write its state file. Returns False when it was not running."""
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reaped, _ = os.waitpid(pid, os.WNOHANG)
                if reaped == pid:
                    break
            except ChildProcessError:
                pass
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True
