# The payment node's image. Build stage: Debian 12 with the -dev packages, built by
# scripts/build.sh, the same recipe CI runs (Release, warnings as errors). Runtime
# stage: debian:12-slim with only the shared libraries paynode links, a non-root
# user and the one binary. Used by docker-compose.yml (build: .).

FROM debian:12 AS build
# The build half of scripts/deps.sh (tests/scripts/test_deploy_config.sh checks that
# every build package listed there is here too). cmocka: CMakeLists.txt requires it
# even with tests off.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libuv1-dev libhttp-parser-dev libjsmn-dev libcurl4-openssl-dev libnng-dev libcmocka-dev \
      libsodium-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN BUILD_DIR=/src/build-docker bash scripts/build.sh -DBUILD_TESTING=OFF \
 && install -D -m 0755 /src/build-docker/paynode /out/paynode

FROM debian:12-slim
# Runtime libraries only (plain http to the processors: no ca-certificates).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libcurl4 libnng1 libhttp-parser2.9 libsodium23 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin paynode \
 && mkdir -p /run/sock \
 && chown paynode:paynode /run/sock
COPY --from=build /out/paynode /usr/local/bin/paynode
# Fail the build, not the deployment, if a shared library is missing.
RUN if ldd /usr/local/bin/paynode | grep "not found"; then exit 1; fi
USER paynode
# HTTP (TCP; the unix socket is SERVER_SOCKET on the shared volume), nng pub (7000)
# and rep (7001: NNG_LISTEN's port + 1), gossip.
EXPOSE 8080 7000 7001 7100/udp
ENV SERVER_PORT=8080
# paynode is PID 1: it handles SIGTERM itself (orderly shutdown).
CMD ["/usr/local/bin/paynode"]
