#!/bin/bash
# The image's 20-envsubst-on-templates.sh, then the stand-in's one difference: what Debian's
# nginx cannot load is taken out of a copy of the config, and nginx runs that copy (in /run:
# the root filesystem is read-only, docker-compose.yml gives /run a tmpfs).
set -Eeuo pipefail

templates=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
output=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
filter=${NGINX_ENVSUBST_FILTER:-}
defined=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" </dev/null))
for template in "$templates"/*"$suffix"; do
    [ -f "$template" ] || continue
    name=$(basename "$template" "$suffix")
    envsubst "$defined" < "$template" | sed -E 's/ resolve( |;)/\1/' > "$output/$name"
    echo "$0: rendered $template to $output/$name"
done

if [ "${1:-}" = nginx ]; then
    sed -E -e '/^\s*load_module\s+\S*ngx_otel_module/d' -e '/^\s*otel_exporter\s*\{/,/\}/d' \
        -e '/^\s*otel_\w+/d' /etc/nginx/nginx.conf > /run/nginx-standin.conf
    shift
    exec nginx -c /run/nginx-standin.conf "$@"
fi
exec "$@"
