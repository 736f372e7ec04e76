"""gunicorn settings for the registry's web processes (docs/deploy.md).

    gunicorn -c deploy/gunicorn.conf.py 'registry:create_app()'

Every value comes from the environment, with defaults for one host behind a
TLS-terminating proxy. The app is loaded in each worker after the fork
(preload off): no MongoDB or Redis connection is shared across a fork, and a
worker restarted by gunicorn starts clean. This file imports nothing of the
app, so prometheus_client is first imported in the workers, after
PROMETHEUS_MULTIPROC_DIR is set.
"""

import os
import shutil
import tempfile

bind = [os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# threads per worker: requests wait on MongoDB and Redis, not on the CPU
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
preload_app = False
# gunicorn's control socket is one path per user: several gunicorns on a host would share it
control_socket_disable = True

# a worker silent this long is killed and replaced (a request stuck on a dead store)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# on SIGTERM, workers finish the requests they have for this long, then are killed
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# recycle workers now and then (0: never); the jitter keeps them from restarting together
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# the heartbeat file of each worker: in memory, not on a container's overlay disk
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# X-Forwarded-* are the app's to believe or not (TRUSTED_PROXIES, registry/api/limits.py), not gunicorn's
forwarded_allow_ips = ""

# gunicorn's own lines as JSON objects with the keys of registry/ops/logs.py; no access log:
# the app writes one line per request with its request id
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": (
            {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": ["levelname", "name", "message", "process"],
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
            }
            if LOG_FORMAT == "json"
            else {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}
        )
    },
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}},
    "root": {"level": "INFO", "handlers": []},  # the app adds its own (registry/ops/logs.py)
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
}

_made_metrics_dir: list[str] = []


def on_starting(server):
    """Before the first fork: tell the workers how many they are, and give them one
    fresh folder for prometheus_client's multiprocess files."""
    os.environ["WEB_CONCURRENCY"] = str(server.cfg.workers)
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="der-registry-metrics-")
        _made_metrics_dir.append(folder)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):  # counts of an earlier run are not this run's
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))


def child_exit(server, worker):
    """A dead worker's live gauges leave the sums; its counters stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    """Let the embedded job thread (the embedded backend only) finish its batch."""
    app = getattr(worker, "wsgi", None)
    if app is not None and "jobs" in getattr(app, "extensions", {}):
        from registry import jobs

        jobs.stop_worker(app, timeout=min(graceful_timeout, 10))


def on_exit(server):
    for folder in _made_metrics_dir:
        shutil.rmtree(folder, ignore_errors=True)
