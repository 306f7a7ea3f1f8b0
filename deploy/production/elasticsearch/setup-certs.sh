#!/bin/bash
# One-shot set-up, following Elastic's "Start a multi-node cluster with Docker Compose":
# a CA and per-node certificates with elasticsearch-certutil (skipped when they already exist),
# then the kibana_system password. Runs in the es-certs service; idempotent.
set -euo pipefail
cd /usr/share/elasticsearch
if [ ! -f config/certs/ca.zip ]; then
  echo "creating the CA"
  bin/elasticsearch-certutil ca --silent --pem -out config/certs/ca.zip
  unzip -o config/certs/ca.zip -d config/certs
fi
if [ ! -f config/certs/certs.zip ]; then
  echo "creating node certificates"
  bin/elasticsearch-certutil cert --silent --pem -out config/certs/certs.zip \
    --in instances.yml --ca-cert config/certs/ca/ca.crt --ca-key config/certs/ca/ca.key
  unzip -o config/certs/certs.zip -d config/certs
fi
chown -R root:root config/certs
find config/certs -type d -exec chmod 750 {} \;
find config/certs -type f -exec chmod 640 {} \;
chmod 600 config/certs/ca/ca.key
echo "waiting for Elasticsearch"
until curl -s --cacert config/certs/ca/ca.crt https://es01:9200 | grep -q "missing authentication credentials"; do sleep 5; done
echo "setting the kibana_system password"
until curl -s -X POST --cacert config/certs/ca/ca.crt -u "elastic:${ELASTIC_PASSWORD}" \
  -H "Content-Type: application/json" https://es01:9200/_security/user/kibana_system/_password \
  -d "{\"password\":\"${KIBANA_PASSWORD}\"}" | grep -q "^{}"; do sleep 5; done
echo "done"
