# syntax=docker/dockerfile:1
# Multi-stage build: compile TypeScript with dev dependencies, then ship production dependencies only on a
# slim Node 24 image as a non-root user. The entry point is dist/main.js, compiled from src/main.ts, the same
# file the integration tests run.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# Memory settings measured with `npm run bench` (README, "Benchmarks"): V8 otherwise grows the young
# generation to 2 × 64 MiB under a burst of reconciles, and glibc gives each thread its own malloc arena.
ENV NODE_OPTIONS="--max-semi-space-size=8"
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/main.js"]
