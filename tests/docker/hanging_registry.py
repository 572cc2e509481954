#!/usr/bin/env python3
"""A registry that hangs, for the Docker fault tests.

hanging_registry.py PORT_FILE UPSTREAM HOLD_FILE HITS_FILE

Forwards every request to the registry at UPSTREAM (host:port), except that a blob
download waits, answering nothing, for as long as HOLD_FILE exists (at most 10 minutes).
Each held blob request appends a line to HITS_FILE. The port it listens on (loopback,
chosen by the kernel) is written to PORT_FILE.
"""
import http.server
import os
import sys
import time
import urllib.error
import urllib.request

port_file, upstream, hold_file, hits_file = sys.argv[1:5]
HOP_BY_HOP = {"content-length", "connection", "transfer-encoding", "keep-alive"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.forward()

    def do_GET(self):
        self.forward()

    def forward(self):
        if "/blobs/" in self.path and os.path.exists(hold_file):
            with open(hits_file, "a") as hits:
                hits.write(self.path + "\n")
            deadline = time.monotonic() + 600
            while os.path.exists(hold_file) and time.monotonic() < deadline:
                time.sleep(0.1)
        headers = {}
        accept = self.headers.get_all("Accept") or []
        if accept:
            headers["Accept"] = ", ".join(accept)
        if self.headers.get("Authorization"):
            headers["Authorization"] = self.headers["Authorization"]
        request = urllib.request.Request("http://" + upstream + self.path,
                                         method=self.command, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                status, reply_headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, reply_headers, body = e.code, e.headers, e.read()
        self.send_response(status)
        for key, value in reply_headers.items():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        # A HEAD carries the length of what a GET would send.
        length = reply_headers.get("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]) + "\n")
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
