"""moto's S3 server, answering one request at a time: ``python s3_test_server.py HOST PORT``.

AWS S3 applies a conditional put (``If-None-Match: *``, which Lance and Delta commit with) atomically.
moto's threaded server checks the condition and stores the object in two steps, so two simultaneous
commits of the same version can both succeed there, a race real S3 does not have. Served one request
at a time, every conditional put is atomic, and concurrent-writer tests test the engines' protocol
rather than the test server's race.
"""

import os
import sys

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    application = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, application, threaded=False, request_handler=MotoRequestHandler)
