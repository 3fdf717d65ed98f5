# Baton worker image: one worker process polling Baton's task queue. Scale by running more containers
# (see docker-compose.yml). It connects to a Temporal server (TEMPORAL_ADDRESS); it never runs one.
FROM node:20-slim

WORKDIR /app

# Dependencies first, so that editing the source does not reinstall them (layer cache).
# scripts/install-temporal.sh comes along because npm's postinstall may call it; the worker does not need
# the Temporal CLI, so it is told to skip the install (no Python in this image anyway).
COPY package.json package-lock.json ./
COPY scripts/install-temporal.sh scripts/install-temporal.sh
ENV BATON_SKIP_TEMPORAL_INSTALL=1
RUN npm ci && npm cache clean --force

COPY . .

# Compiled JavaScript and the workflow code bundled once, here, rather than TypeScript run and bundled
# by every container at start (seconds of CPU and hundreds of MiB each time: bench/README.md, "Where
# the time goes"): `npm run build` writes dist/ and the bundle the worker loads (BATON_WORKFLOW_BUNDLE).
# Built from the code copied above, so the bundle and the code cannot drift apart.
RUN npm run build
ENV BATON_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js

# Artifacts and reports go to the S3 bucket BATON_STORE names (docker-compose.yml sets one: MinIO).
# Without it, they live in these folders, on a volume every worker shares. Creating the folders here,
# owned by the unprivileged user, makes a fresh named volume start with that ownership.
RUN mkdir -p /data/artifacts /data/reports && chown -R node:node /data
ENV BATON_ARTIFACT_DIR=/data/artifacts \
    BATON_REPORT_DIR=/data/reports

# The worker only needs to read /app and write /data: no reason to run as root.
USER node

# As `npm run worker:prod`: the compiled worker, its heap capped (docs/operations.md, "Workers").
CMD ["node", "--max-old-space-size=384", "dist/workers/main.js"]
