"""The application server's own defences (gunicorn worker classes), loaded by gunicorn.conf.py."""
