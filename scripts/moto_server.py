"""Starts moto's server as `moto_server` does, with one difference: DynamoDB requests are handled
one at a time.

Real DynamoDB applies a conditional write atomically. moto's threaded server checks a condition
and then writes, so two concurrent conditional writes to one item can both succeed. rectify's job
claims and resource locks rely on that atomicity, so this local AWS serializes DynamoDB calls;
other services stay concurrent (an SQS long poll does not hold up the rest).

Usage: python scripts/moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    inner = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def app(environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return inner(environ, start_response)
        with dynamodb:
            result = inner(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        return [body]

    run_simple(host, port, app, threaded=True)


if __name__ == "__main__":
    main()
