"""A stand-in for ``python -m llama_cpp.server``, run as a child process by the supervisor tests.

It speaks the two routes ragdeck uses (``GET /v1/models``, ``POST /v1/chat/completions``) with the standard
library only, so it starts in a fraction of a second. ``--crash-marker FILE``: while FILE exists, a chat
request deletes it and the process dies with SIGSEGV (as llama.cpp did on AMX CPUs); ``--always-crash``
dies on every chat request; ``--hang-marker FILE``: while FILE exists, every request blocks forever.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-alias", default="fake-llama")
    parser.add_argument("--crash-marker", type=Path)
    parser.add_argument("--always-crash", action="store_true")
    parser.add_argument("--hang-marker", type=Path)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _hang(self) -> None:
            while args.hang_marker is not None and args.hang_marker.exists():
                time.sleep(0.05)

        def do_GET(self) -> None:
            self._hang()
            self._send({"object": "list", "data": [{"id": args.model_alias, "object": "model"}]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            json.loads(self.rfile.read(length) or b"{}")
            self._hang()
            crash = args.always_crash
            if args.crash_marker is not None and args.crash_marker.exists():
                args.crash_marker.unlink()
                crash = True
            if crash:
                print("ggml_backend_amx_mul_mat: general protection fault (simulated)", flush=True)
                ctypes.string_at(0)  # a real SIGSEGV in this thread, before any answer goes out
            self._send({
                "id": "chatcmpl-fake", "object": "chat.completion", "model": args.model_alias,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK [1]"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            })  # fmt: skip

        def log_message(self, format: str, *args: object) -> None:
            print(format % args, flush=True)

    print(f"fake llama.cpp server on 127.0.0.1:{args.port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
