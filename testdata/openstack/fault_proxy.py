#!/usr/bin/env python3
"""A loopback HTTP(S) proxy in front of the Octavia API that injects the faults tests need.

Usage: fault_proxy.py --upstream http://127.0.0.1:9876 --log FILE
                      [--drop-answer "POST /v2/lbaas/loadbalancers"] [--unauthorized-once]
                      [--busy-once "POST /v2/lbaas/listeners"]
                      [--cert CERT --key KEY]

It forwards every request to the upstream and its answer back, except:
- --drop-answer "METHOD PATH": the first such request is forwarded (the server acts on
  it), then the connection is closed without an answer: a create whose answer is lost.
- --unauthorized-once: the first request that carries a token gets 401, as if the token
  had expired or been revoked.
- --busy-once "METHOD PATH": the first such request gets Octavia's 409 (the load balancer
  is immutable) without reaching it, as when another actor changed it in between.
- --cert/--key: it speaks HTTPS (for CA bundle and `insecure` tests).

Prints "listening on PORT" once ready. Each request is logged to --log as one line:
"METHOD PATH STATUS TOKEN-DIGEST" (STATUS "dropped" or "401-injected"; a digest, never
the token).
"""
import argparse
import hashlib
import http.client
import http.server
import ssl
import sys
import threading
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--drop-answer")
    ap.add_argument("--unauthorized-once", action="store_true")
    ap.add_argument("--busy-once")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    up = urllib.parse.urlsplit(args.upstream)
    state = {"dropped": False, "unauthorized": False, "busy": False}
    lock = threading.Lock()
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, msg):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            token = self.headers.get("X-Auth-Token") or ""
            digest = hashlib.sha256(token.encode()).hexdigest()[:12] if token else "-"
            path = self.path.split("?")[0]
            with lock:
                inject_401 = args.unauthorized_once and token and not state["unauthorized"]
                if inject_401:
                    state["unauthorized"] = True
                drop = (args.drop_answer == f"{self.command} {path}" and not state["dropped"])
                if drop:
                    state["dropped"] = True
                busy = (args.busy_once == f"{self.command} {path}" and not state["busy"])
                if busy:
                    state["busy"] = True
            if busy:
                log.write(f"{self.command} {path} 409-injected {digest}\n")
                self.answer(409, b'{"faultcode": "Client", "faultstring": "Load Balancer is immutable and cannot be updated.", "debuginfo": null}')
                return
            if inject_401:
                log.write(f"{self.command} {path} 401-injected {digest}\n")
                self.answer(401, b'{"error": {"code": 401, "message": "The request you have made requires authentication."}}')
                return
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP and k.lower() != "host"}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            if drop:
                log.write(f"{self.command} {path} dropped {digest}\n")
                self.close_connection = True
                self.connection.close()
                return
            log.write(f"{self.command} {path} {resp.status} {digest}\n")
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
