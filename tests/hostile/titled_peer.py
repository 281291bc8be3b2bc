"""A real process with a serving engine's title that listens on loopback and answers every
connection as told (``--mode``): Prometheus text from a file, non-HTTP bytes, or one byte every
0.3 s. An optional child takes the engine's title (the process that holds GPU memory).

``python titled_peer.py --title T --port N --mode MODE [--body FILE] [--child-title C]``: prints
``CHILD_PID`` once it listens, then serves until killed.
"""

import argparse
import socket
import subprocess
import sys
import threading
import time

import setproctitle

GARBAGE = b"\x1b[31m[bold red]SSH-2.0-OpenSSH_9.6[/bold red]\x00\xff\xfe\r\n" * 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("file", "garbage", "drip"), required=True)
    ap.add_argument("--body")
    ap.add_argument("--child-title")
    args = ap.parse_args()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if args.mode == "garbage":
                    conn.sendall(GARBAGE)
                elif args.mode == "drip":
                    for byte in b"HTTP/1.1 200 OK\r\n" + b"x" * 100_000:
                        conn.sendall(bytes([byte]))
                        time.sleep(0.3)
                else:
                    with open(args.body, "rb") as fh:
                        body = fh.read()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                 + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            except OSError:
                pass

    server = socket.create_server(("127.0.0.1", args.port))
    child_pid = 0
    if args.child_title:
        code = f"import setproctitle, time; setproctitle.setproctitle({args.child_title!r}); time.sleep(3600)"
        child_pid = subprocess.Popen([sys.executable, "-c", code]).pid
    setproctitle.setproctitle(args.title)
    print(child_pid, flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
