#!/usr/bin/python3
# A webhook receiver for the tests: every request it gets is a JSON line
# of <dir>/got ({"path", "headers", "body", "answer", "tls", "time": when
# its body was read, unix seconds}); it answers
# with the next status of <dir>/statuses (comma-separated; "hang" waits
# 60 s; empty: 200).  receiver.py PORT DIR [TLS-PORT CERT KEY]: also over
# TLS on TLS-PORT.  RECEIVER_HTTP11=1: answers in HTTP/1.1, keeping its
# connections; "peer" is the port the request came from (one a
# connection).

import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, folder = int(sys.argv[1]), sys.argv[2]


def next_status():
    path = os.path.join(folder, 'statuses')
    try:
        with open(path) as f:
            items = [s for s in f.read().strip().split(',') if s]
    except FileNotFoundError:
        items = []
    if not items:
        return '200'
    with open(path + '.tmp', 'w') as f:
        f.write(','.join(items[1:]))
    os.replace(path + '.tmp', path)
    return items[0]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        now = time.time()
        status = next_status()
        with open(os.path.join(folder, 'got'), 'a') as f:
            f.write(json.dumps({'path': self.path,
                                'headers': {k.lower(): v for k, v
                                            in self.headers.items()},
                                'body': body.decode(),
                                'answer': status,
                                'tls': self.server.tls,
                                'peer': self.client_address[1],
                                'time': now}) + '\n')
        if status == 'hang':
            time.sleep(60)
            return
        self.send_response(int(status))
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')

    def log_message(self, *args):
        pass


if os.environ.get('RECEIVER_HTTP11') == '1':
    Handler.protocol_version = 'HTTP/1.1'


# many deliveries may connect at once: no SYN dropped by a short backlog
ThreadingHTTPServer.request_queue_size = 256

if len(sys.argv) > 5:
    tls = ThreadingHTTPServer(('127.0.0.1', int(sys.argv[3])), Handler)
    tls.tls = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    threading.Thread(target=tls.serve_forever, daemon=True).start()

plain = ThreadingHTTPServer(('127.0.0.1', port), Handler)
plain.tls = False
plain.serve_forever()
