# syntax=docker/dockerfile:1
#
# One image for every process of the platform: the gateway and each subgraph. SERVICE picks the
# process, as a build argument (the image's default) and as an environment variable (what a
# container runs; compose.yaml and deploy/k8s set it per service):
#
#   docker build -t shop-platform .                          # SERVICE=gateway by default
#   docker build -t shop-products --build-arg SERVICE=products .
#   docker run -e SERVICE=reviews -e SUBGRAPH_SECRET=... shop-platform
#
# The processes run TypeScript through tsx (`node --import tsx <entry>`), exactly as
# `npm run start:services` starts them (stack/src/services.ts): there is no JavaScript build step
# used at run time. tsx is a devDependency, so the runtime keeps the full `npm ci` tree.
# There is no container engine on the machine this was written on: test/deploy-files.test.ts
# checks this file (stages, npm commands, entry paths, SERVICE choices, non-root user); see
# docs/deployment.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- deps: the workspace's node_modules, from the lockfile ----
FROM ${NODE_IMAGE} AS deps
# better-sqlite3 compiles from source when no prebuilt binary fits (the embedded mode's store; it
# is a dependency of every subgraph even when they run on PostgreSQL).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# package.json's packageManager: npm 11 runs install scripts only for the packages in allowScripts.
RUN npm install -g npm@11.19.1
WORKDIR /app
COPY package.json package-lock.json ./
# Every workspace's manifest, so `npm ci` links the workspaces (the test checks this list
# against package.json's workspaces).
COPY packages/cache/package.json packages/cache/
COPY packages/codegen/package.json packages/codegen/
COPY packages/composition/package.json packages/composition/
COPY packages/config/package.json packages/config/
COPY packages/events/package.json packages/events/
COPY packages/eventstore/package.json packages/eventstore/
COPY packages/schema-check/package.json packages/schema-check/
COPY packages/seed/package.json packages/seed/
COPY packages/server/package.json packages/server/
COPY packages/store/package.json packages/store/
COPY packages/telemetry/package.json packages/telemetry/
COPY packages/testing/package.json packages/testing/
COPY packages/tracing/package.json packages/tracing/
COPY subgraphs/accounts/package.json subgraphs/accounts/
COPY subgraphs/inventory/package.json subgraphs/inventory/
COPY subgraphs/orders/package.json subgraphs/orders/
COPY subgraphs/payments/package.json subgraphs/payments/
COPY subgraphs/products/package.json subgraphs/products/
COPY subgraphs/reviews/package.json subgraphs/reviews/
COPY gateway/package.json gateway/
COPY stack/package.json stack/
RUN npm ci --no-audit --no-fund

# ---- runtime: the source, the dependencies, a non-root user ----
FROM ${NODE_IMAGE} AS runtime
ARG SERVICE=gateway
ENV SERVICE=${SERVICE} \
    NODE_ENV=production \
    HOST=0.0.0.0
WORKDIR /app
# The node image's unprivileged user `node` is uid/gid 1000; numeric, so Kubernetes'
# runAsNonRoot can verify it. The code and dependencies stay root's: the user that runs them
# cannot change them (only /tmp is written; the Kubernetes files mount the root file system read-only).
COPY . .
COPY --from=deps /app/ ./
USER 1000:1000
# The contract ports: gateway 4000, accounts 4001 ... payments 4006 (GATEWAY_PORT, <SERVICE>_PORT).
EXPOSE 4000 4001 4002 4003 4004 4005 4006
# /health answers while the process is alive; /ready is for load balancers (HAProxy, Kubernetes).
# The slim image has no curl: node's fetch asks the port this SERVICE listens on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD node -e "const s=process.env.SERVICE;const d={gateway:4000,accounts:4001,products:4002,inventory:4003,reviews:4004,orders:4005,payments:4006};const p=process.env[s==='gateway'?'GATEWAY_PORT':s.toUpperCase()+'_PORT']||d[s];fetch('http://127.0.0.1:'+p+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# `exec`: node becomes PID 1's replacement and gets SIGTERM itself, so it drains before exiting.
ENTRYPOINT ["/bin/sh", "-c", "case \"$SERVICE\" in gateway) entry=gateway/src/index.ts ;; accounts|products|inventory|reviews|orders|payments) entry=subgraphs/$SERVICE/src/index.ts ;; *) echo \"SERVICE must be gateway, accounts, products, inventory, reviews, orders or payments; got '$SERVICE'\" >&2; exit 64 ;; esac; exec node --import tsx \"$entry\""]
