"""What operators see: log format, request ids, access lines, Prometheus metrics, ``/ready``."""
