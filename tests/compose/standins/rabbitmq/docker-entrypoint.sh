#!/bin/bash
# Runs the server as the rabbitmq user in the foreground, logging where conf.d says (Debian's
# /usr/sbin wrapper would send its output to /var/log/rabbitmq/startup_log instead).
set -Eeuo pipefail

if [ "${1:-}" = rabbitmq-server ]; then
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    shift
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
        /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
