# bpfproxy agent image (first version; completed with deploy/ in the shipping work).
# BASE must provide Node.js >= 20.17 on Debian bookworm.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
COPY hack/system-packages.txt hack/
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(grep -v '^#' hack/system-packages.txt) \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json CMakeLists.txt binding.gyp tsconfig.json tsconfig.build.json ./
COPY native native
COPY bpf bpf
COPY ts ts
RUN npm ci --no-audit --no-fund && npm run build:ts && npm prune --omit=dev

FROM ${BASE}
LABEL org.opencontainers.image.title="bpfproxy" \
      org.opencontainers.image.description="Kubernetes Services in BPF: a kube-proxy replacement" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
 && apt-get install -y --no-install-recommends libelf1 zlib1g iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/bpfproxy
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/build/native/Release/bpfproxy.node build/native/Release/bpfproxy.node
COPY --from=build /src/dist dist
ENTRYPOINT ["node", "/opt/bpfproxy/dist/ts/cli/main.js"]
CMD ["version"]
