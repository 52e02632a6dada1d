# Dev container for working on MCP Workspace itself: Node 20 with the tools the test suite uses.
FROM node:20-bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      git gcc libc6-dev docker.io busybox-static chromium \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /workspaces/mcp-workspace
