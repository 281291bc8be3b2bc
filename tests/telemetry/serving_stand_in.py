"""A stand-in serving process for the telemetry tests: a real process with a serving title that
really listens on a TCP port and answers HTTP from a file the test rewrites, plus an optional
child with an engine title (the process that would hold the GPU memory).

Run as a script: ``python serving_stand_in.py --title T --body FILE [--port N] [--child-title C]``.
Prints one line ``PORT CHILD_PID`` once it listens, then serves until killed.
"""

import argparse
import http.server
import subprocess
import sys

import setproctitle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", required=True)
    ap.add_argument("--body", required=True, help="file whose contents every GET returns")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--child-title")
    ap.add_argument("--content-type", default="text/plain; version=0.0.4; charset=utf-8")
    args = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            with open(args.body, "rb") as fh:
                body = fh.read()
            self.send_response(200)
            self.send_header("Content-Type", args.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    child_pid = 0
    if args.child_title:
        code = f"import setproctitle, time; setproctitle.setproctitle({args.child_title!r}); time.sleep(3600)"
        child_pid = subprocess.Popen([sys.executable, "-c", code]).pid
    setproctitle.setproctitle(args.title)
    print(server.server_address[1], child_pid, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
